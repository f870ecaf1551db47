/** The sandbox's sign-in page: plain, accessible HTML (labels, focus order, contrast). */
function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export function renderSignInPage(options: {
  action: string;
  loginHint: string;
  appName: string;
  error?: string;
  /** Admin consent: Accept and Cancel buttons (the form's `consent` field) instead of Sign in. */
  consent?: boolean;
}): string {
  const error = options.error ? `<p class="error" role="alert" id="error">${escapeHtml(options.error)}</p>` : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in to your account</title>
<style>
body{font-family:"Segoe UI",system-ui,sans-serif;background:#f3f2f1;color:#1b1b1b;margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center}
main{background:#fff;padding:44px;max-width:360px;width:100%;box-shadow:0 2px 6px rgba(0,0,0,.2)}
h1{font-size:24px;font-weight:600;margin:0 0 8px}
p.app{margin:0 0 16px;color:#444}
label{display:block;font-size:15px;margin:12px 0 4px}
input{width:100%;box-sizing:border-box;font-size:15px;padding:8px;border:1px solid #666}
input:focus{outline:2px solid #0067b8;outline-offset:1px}
button{margin-top:20px;background:#0067b8;color:#fff;border:0;padding:10px 24px;font-size:15px;cursor:pointer}
button:focus{outline:2px solid #1b1b1b;outline-offset:2px}
.error{color:#a80000;font-size:14px}
.note{font-size:13px;color:#444;margin-top:16px}
</style></head>
<body><main>
<h1>Sign in</h1>
<p class="app">to continue to ${escapeHtml(options.appName)} (sandbox)</p>
${error}
<form method="post" action="${escapeHtml(options.action)}">
<label for="username">Email, phone, or Skype</label>
<input id="username" name="username" type="email" autocomplete="username" required value="${escapeHtml(options.loginHint)}"${options.error ? ' aria-describedby="error"' : ''}>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
${
  options.consent
    ? '<p>Accepting grants these permissions for your whole organization.</p><button type="submit" id="accept" name="consent" value="accept">Accept</button> <button type="submit" id="cancel" name="consent" value="cancel">Cancel</button>'
    : '<button type="submit" id="signin">Sign in</button>'
}
</form>
<p class="note">Sandbox Entra ID — seeded users only.</p>
</main></body></html>`;
}
