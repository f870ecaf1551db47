/**
 * Scrubs secrets from text before it reaches a log line or an error message: JWTs, PEM blocks
 * (keys and certificates), long base64 runs (PFX, DER), Entra-style client secrets and common
 * `secret=`/`password=`/`Authorization:` forms.
 */
import { errorFields, isError } from './error-fields';

const PATTERNS: Array<[RegExp, string]> = [
  [/-----BEGIN [A-Z0-9 ]+-----[\s\S]*?-----END [A-Z0-9 ]+-----/g, '[REDACTED PEM]'],
  // A block cut short (an error message truncated mid-key): its base64 lines are too short for the run below.
  [/-----BEGIN [A-Z0-9 ]+-----[A-Za-z0-9+/=\s]*/g, '[REDACTED PEM]'],
  [/\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g, '[REDACTED JWT]'],
  [/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/gi, '$1 [REDACTED]'],
  [
    /((?:client_secret|client_assertion|password|secret|access_token|refresh_token|id_token|code_verifier|assertion)["']?\s*[=:]\s*["']?)[^"'&\s,;}]+/gi,
    '$1[REDACTED]',
  ],
  [/\b[A-Za-z0-9_-]{3}8Q~[A-Za-z0-9_.~-]{30,}/g, '[REDACTED SECRET]'],
  [/[A-Za-z0-9+/]{200,}={0,2}/g, '[REDACTED BASE64]'],
];

/**
 * Every pattern above needs one of these words, or a string of 200 characters at least (the
 * base64 run): most strings (ids, names, statuses) have neither and skip the seven regexes —
 * audit entries and log lines pass every string field through here.
 */
const MAY_HOLD_SECRET = /-----BEGIN|eyJ|bearer|basic|secret|assertion|password|token|code_verifier|8Q~/i;

export function redact(text: string): string {
  if (text.length < 200 && !MAY_HOLD_SECRET.test(text)) return text;
  let out = text;
  for (const [pattern, replacement] of PATTERNS) out = out.replace(pattern, replacement);
  return out;
}

/** Deep-copies a value with every string redacted and secret-named keys blanked. */
export function redactValue(value: unknown, depth = 0): unknown {
  if (depth > 8) return '[…]';
  if (typeof value === 'string') return redact(value);
  if (isError(value)) return redactValue(errorFields(value), depth + 1); // name, message, stack are not enumerable: pick them out
  if (Array.isArray(value)) return value.map((v) => redactValue(v, depth + 1));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = SECRET_KEY.test(k) || PASSWORD_KEY.test(k) ? '[REDACTED]' : redactValue(v, depth + 1);
    }
    return out;
  }
  return value;
}

const SECRET_KEY =
  /^(password|passwd|secret|clientsecret|client_secret|token|accesstoken|access_token|authorization|privatekey|private_key|pfx|assertion|client_assertion|cookie)$/i;
/** Any name that holds a password, not only `password` itself: NewPassword, OldPassword, RoomMailboxPassword, pfxPassword, … */
const PASSWORD_KEY = /pass(?:word|wd|phrase)|pwd$/i;
