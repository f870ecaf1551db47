/// <reference lib="dom" />
/**
 * When the portal gives up on silent renewal and signs in interactively (portal/src/auth.ts):
 * Entra says interaction is needed (interaction_required, login_required, consent_required…), or
 * the hidden iframe never answered (monitor_window_timeout, MSAL 5's redirect-bridge timeout). Any
 * other failure (network, server) is shown, not turned into a redirect.
 */
import { AuthError, BrowserAuthError, InteractionRequiredAuthError, ServerError } from '@azure/msal-browser';
import { needsInteraction } from '../../portal/src/auth';

describe('needsInteraction', () => {
  it.each([
    [
      'login_required from Entra (no session)',
      new InteractionRequiredAuthError(
        'login_required',
        'cid',
        'AADSTS50058: A silent sign-in request was sent but no user is signed in.',
      ),
    ],
    ['interaction_required from Entra', new InteractionRequiredAuthError('interaction_required', 'cid', 'AADSTS16000')],
    ['consent_required', new InteractionRequiredAuthError('consent_required', 'cid', 'AADSTS65001')],
    ['no_tokens_found', new InteractionRequiredAuthError('no_tokens_found', 'cid')],
    ['monitor_window_timeout (iframe polling timed out)', new BrowserAuthError('monitor_window_timeout', 'cid')],
    [
      'timed_out with the monitor_window_timeout sub-error',
      new AuthError('timed_out', 'cid', 'Token acquisition in iframe failed due to timeout.', 'monitor_window_timeout'),
    ],
    ['timed_out of the redirect bridge', new BrowserAuthError('timed_out', 'cid', 'redirect_bridge_timeout')],
    ['login_required as a plain server answer', new ServerError('login_required', 'cid', 'AADSTS50058')],
  ])('%s → interactive', (_label, error) => {
    expect(needsInteraction(error)).toBe(true);
  });

  it.each([
    ['a network failure', new BrowserAuthError('no_network_connectivity', 'cid')],
    ['a server error', new ServerError('temporarily_unavailable', 'cid', 'AADSTS90033')],
    ['invalid_grant left after the iframe', new ServerError('invalid_grant', 'cid', 'AADSTS70008')],
    ['not an MSAL error', new Error('boom')],
    ['nothing', undefined],
  ])('%s → shown, no redirect', (_label, error) => {
    expect(needsInteraction(error)).toBe(false);
  });
});
