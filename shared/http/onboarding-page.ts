/**
 * The pages the customer's admin sees at the end of an onboarding (the callback answers a
 * browser, not an API client): plain, accessible HTML, every value escaped, no script, nothing
 * secret (the state is never echoed), never cached.
 */
import type { HttpResponseInit } from '@azure/functions';
import type { OnboardingOutcome } from '../onboarding/onboarding';

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'content-security-policy':
    "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; form-action 'none'",
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
};

function page(status: number, title: string, body: string): HttpResponseInit {
  return {
    status,
    headers: HEADERS,
    body: `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} — exo-gateway</title>
<style>
body{font-family:"Segoe UI",system-ui,sans-serif;color:#1b1b1b;max-width:50rem;margin:2rem auto;padding:0 1rem;line-height:1.5}
h1{font-size:1.5rem}
pre{background:#f3f2f1;padding:.75rem;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
.ok{color:#0b6a0b}.fail{color:#a80000}
</style></head>
<body><main>
<h1 id="title">${escapeHtml(title)}</h1>
${body}
</main></body></html>`,
  };
}

/** The page after a consent that registered (or re-checked) the tenant. */
export function onboardingSuccessPage(outcome: OnboardingOutcome): HttpResponseInit {
  const t = outcome.tenant;
  const what = outcome.created ? 'is now registered' : 'was registered already and has been checked again';
  const facts = `<ul>
<li>Tenant: ${escapeHtml(t.domain)} (${escapeHtml(t.tenantId)})</li>
<li>App: ${escapeHtml(t.clientId)}, credential kind ${escapeHtml(t.credentialKind)} — no certificate or secret</li>
<li>Check: <span id="state" class="${t.state === 'ok' ? 'ok' : 'fail'}">${escapeHtml(t.state)}</span></li>
</ul>`;
  const assignment = outcome.roleAssignment;
  const tried = assignment
    ? `<p id="role-assignment" class="${assignment.outcome === 'failed' ? 'fail' : 'ok'}">${escapeHtml(
        assignment.outcome === 'failed'
          ? `The gateway could not assign the role: ${assignment.detail}`
          : 'The gateway assigned the Entra role Exchange Administrator to the app in this tenant (Exchange can take a few minutes to honour a new role: check the tenant again if commands are still refused).',
      )}</p>`
    : '';
  if (t.state === 'ok' || !outcome.manualStep)
    return page(
      200,
      'Tenant onboarded',
      `<p>Consent granted: ${escapeHtml(t.domain)} ${what}. Commands for it run now.</p>${facts}${tried}`,
    );
  const step = outcome.manualStep;
  const offer = outcome.assignRoleUrl
    ? `<p><a id="assign-role" href="${escapeHtml(outcome.assignRoleUrl)}">Assign the role for me</a> — sign in as a Global Administrator or Privileged Role Administrator of ${escapeHtml(t.domain)}; the gateway uses that sign-in once, for this one role assignment. Or do it yourself:</p>`
    : '';
  return page(
    200,
    'Consent granted — one step left',
    `<p>Consent granted: ${escapeHtml(t.domain)} ${what}, but its check failed, so its commands are refused until it passes.</p>
${facts}
<p>What failed: ${escapeHtml(t.reason ?? 'the check')}</p>
${tried}
<h2>Do this in ${escapeHtml(t.domain)}</h2>
${offer}
<p id="manual-step">${escapeHtml(step.summary)}</p>
<pre id="commands">${escapeHtml(step.commands.join('\n'))}</pre>`,
  );
}

/** The page for a refused callback (denied consent, bad state, wrong tenant): its status from the problem. */
export function onboardingFailurePage(problem: {
  status: number;
  title: string;
  detail?: string;
  errors?: Array<{ field: string; message: string }>;
}): HttpResponseInit {
  const errors = problem.errors?.length
    ? `<ul id="errors">${problem.errors.map((e) => `<li>${escapeHtml(e.field)}: ${escapeHtml(e.message)}</li>`).join('')}</ul>`
    : '';
  return page(
    problem.status,
    `Onboarding failed: ${problem.title}`,
    `<p class="fail" id="detail">${escapeHtml(problem.detail ?? problem.title)}</p>${errors}`,
  );
}
