/**
 * Issue 16 finding 11 — the commands table kept raw parameters, a Password value included, and
 * the audit blanked only fields named exactly "password" — through the real path (local host +
 * Azurite + sandbox Key Vault, Entra ID and Exchange):
 *   - Set-Mailbox with a Password: the stored row (read raw with TableClient) holds a sealed value
 *     (AES-256-GCM, the Key Vault key's version beside it), never the clear password; Exchange
 *     receives the clear one; once the command ends the sealed value is gone; GET shows "***";
 *   - NewPassword / OldPassword are nowhere in the commands or audit tables either;
 *   - without PARAMETER_SEALING_KEY_URL such a command is refused (422 naming the field and the
 *     setting) and nothing is stored or queued.
 */
import { TableClient } from '@azure/data-tables';
import { startTestCloud } from '../support/sandbox';
import { startTestGateway, CONTOSO, type TestGateway } from '../support/gateway';
import type { SandboxCloud } from '../../sandbox/cloud/cloud';
import { SANDBOX_SEALING_KEY } from '../../sandbox/directory/seed';

const PASSWORD = 'Sealed-Pa55word!-7f3a';
const NEW_PASSWORD = 'N3w-Pa55word!-c41d';
const OLD_PASSWORD = '0ld-Pa55word!-9be2';

let cloud: SandboxCloud;
let gw: TestGateway;
let noKey: TestGateway;

beforeAll(async () => {
  cloud = await startTestCloud();
  gw = await startTestGateway({ cloud });
  noKey = await startTestGateway({ cloud, env: { PARAMETER_SEALING_KEY_URL: '' } });
});
afterAll(async () => {
  await gw?.stop();
  await noKey?.stop();
  await cloud?.stop();
});

const table = (g: TestGateway, name: string) =>
  TableClient.fromConnectionString(g.env.AzureWebJobsStorage!, name, { allowInsecureConnection: true });

/** Every row of a table as raw text (what anyone with data access to the account reads). */
async function rawRows(g: TestGateway, name: string): Promise<string[]> {
  const client = table(g, name);
  await client.createTable();
  const rows: string[] = [];
  for await (const row of client.listEntities()) rows.push(JSON.stringify(row));
  return rows;
}

async function rawCommandRow(id: string): Promise<Record<string, unknown>> {
  return (await table(gw, gw.env.COMMANDS_TABLE!).getEntity(id, 'command')) as Record<string, unknown>;
}

const mailbox = (alias: string) =>
  [...cloud.exchange.recipients(CONTOSO).mailboxes.values()].find((m) => m.user.alias === alias)!;

it('Set-Mailbox -Password: sealed at rest, clear only to Exchange, gone when the command ends, "***" when read', async () => {
  // A slow Exchange for Contoso: the command is still running when its row is read.
  cloud.exchange.configure({ tenants: { [CONTOSO]: { latencyMs: 1500 } } });
  const res = await gw.post('/api/commands', {
    tenant: CONTOSO,
    cmdlet: 'Set-Mailbox',
    parameters: { Identity: 'adele.vance@contoso.com', Password: PASSWORD },
  });
  expect(res.status).toBe(202);
  const accepted = (await res.json()) as { id: string; parameters: Record<string, unknown> };
  expect(accepted.parameters).toEqual({ Identity: 'adele.vance@contoso.com', Password: '***' });

  const row = await rawCommandRow(accepted.id);
  expect(JSON.stringify(row)).not.toContain(PASSWORD);
  const stored = JSON.parse(row.parameters as string) as { Password: Record<string, string> };
  expect(stored.Password).toMatchObject({
    '@sealed': 'A256GCM',
    kid: expect.stringMatching(new RegExp(`^${SANDBOX_SEALING_KEY.name}/[0-9a-f]+$`)),
    iv: expect.any(String),
    data: expect.any(String),
  });
  expect(Buffer.from(stored.Password.data!, 'base64').toString('latin1')).not.toContain(PASSWORD);

  const done = await gw.waitFor(res.headers.get('location')!, 30_000);
  cloud.exchange.configure({ tenants: {} });
  expect(done).toMatchObject({
    status: 'succeeded',
    parameters: { Identity: 'adele.vance@contoso.com', Password: '***' },
  });
  // Exchange got the clear password.
  expect(mailbox('adele.vance').password).toBe(PASSWORD);
  // The ended command keeps no sealed value.
  const after = await rawCommandRow(accepted.id);
  expect(JSON.parse(after.parameters as string)).toEqual({ Identity: 'adele.vance@contoso.com', Password: '***' });
  // Nowhere in the commands table, the audit trail or the queue.
  const everything = [...(await rawRows(gw, gw.env.COMMANDS_TABLE!)), ...(await rawRows(gw, gw.env.AUDIT_TABLE!))].join(
    '\n',
  );
  expect(everything).not.toContain(PASSWORD);
  expect(everything).not.toContain('@sealed');
  const audit = await gw.services.audit().forCommand(accepted.id);
  expect(audit.map((a) => a.event)).toEqual(['accepted', 'succeeded']);
  // Masked ("***"), then blanked by the log redaction's name rule like every password-named field.
  for (const entry of audit)
    expect(entry.parameters).toEqual({ Identity: 'adele.vance@contoso.com', Password: '[REDACTED]' });
}, 60_000);

it('NewPassword and OldPassword are sealed and masked too (the audit used to blank only "password")', async () => {
  const res = await gw.post('/api/commands', {
    tenant: CONTOSO,
    cmdlet: 'Set-Mailbox',
    parameters: { Identity: 'alex.wilber@contoso.com', OldPassword: OLD_PASSWORD, NewPassword: NEW_PASSWORD },
  });
  expect(res.status).toBe(202);
  // The sandbox's Set-Mailbox has no such parameters: Exchange refuses, the command fails — and ends.
  const done = await gw.waitFor(res.headers.get('location')!, 30_000);
  expect(done).toMatchObject({ status: 'failed', parameters: { OldPassword: '***', NewPassword: '***' } });
  const everything = [...(await rawRows(gw, gw.env.COMMANDS_TABLE!)), ...(await rawRows(gw, gw.env.AUDIT_TABLE!))].join(
    '\n',
  );
  for (const secret of [OLD_PASSWORD, NEW_PASSWORD]) expect(everything).not.toContain(secret);
});

it('the same idempotency key and password is the same command; another password under that key is a 422', async () => {
  const key = `sealed-${Date.now()}`;
  const body = {
    tenant: CONTOSO,
    cmdlet: 'Set-Mailbox',
    parameters: { Identity: 'lidia.holloway@contoso.com', Password: PASSWORD },
    idempotencyKey: key,
  };
  const first = await gw.post('/api/commands', body);
  const second = await gw.post('/api/commands', body);
  expect(((await second.json()) as { id: string }).id).toBe(((await first.json()) as { id: string }).id);
  const other = await gw.post('/api/commands', {
    ...body,
    parameters: { ...body.parameters, Password: `${PASSWORD}-other` },
  });
  expect(other.status).toBe(422);
  await gw.waitFor(first.headers.get('location')!, 30_000);
});

it('without PARAMETER_SEALING_KEY_URL a command with a secret is refused, naming the field and the setting; nothing stored or queued', async () => {
  const res = await noKey.post('/api/commands', {
    tenant: CONTOSO,
    cmdlet: 'Set-Mailbox',
    parameters: { Identity: 'adele.vance@contoso.com', Password: PASSWORD },
  });
  expect(res.status).toBe(422);
  expect(res.headers.get('content-type')).toBe('application/problem+json');
  const problem = (await res.json()) as {
    title: string;
    detail: string;
    errors: Array<{ field: string; message: string }>;
  };
  expect(problem.title).toBe('Secret parameters not accepted');
  expect(problem.detail).toMatch(/PARAMETER_SEALING_KEY_URL/);
  expect(problem.errors).toEqual([
    { field: 'parameters.Password', message: 'is a secret, and PARAMETER_SEALING_KEY_URL is not set' },
  ]);
  expect(await rawRows(noKey, noKey.env.COMMANDS_TABLE!)).toEqual([]);
  await noKey.queue.createIfNotExists();
  expect((await noKey.queue.getProperties()).approximateMessagesCount).toBe(0);
  expect((await rawRows(noKey, noKey.env.AUDIT_TABLE!)).join('\n')).not.toContain(PASSWORD);
  // Commands without secrets are unaffected.
  const plain = await noKey.post('/api/commands', {
    tenant: CONTOSO,
    cmdlet: 'Get-Mailbox',
    parameters: { ResultSize: 1 },
  });
  expect(plain.status).toBe(202);
  await noKey.waitFor(plain.headers.get('location')!, 30_000);
});
