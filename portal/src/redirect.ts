/**
 * The redirect page of silent (hidden-iframe) and popup sign-ins (redirect.html): Entra ID sends
 * the authorization response here, and MSAL's redirect bridge hands it to the portal page that
 * asked, which redeems it. Nothing else runs here — no MSAL instance, no app — so the response is
 * never consumed twice. Served frameable by the portal's own origin only (frame-ancestors 'self').
 */
import { broadcastResponseToMainFrame } from '@azure/msal-browser/redirect-bridge';

broadcastResponseToMainFrame().catch(() => {
  // No response in the URL (opened directly): nothing to hand over.
});
