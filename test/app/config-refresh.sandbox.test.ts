/**
 * A due look at the tenant registry and the policy (every CONFIG_REFRESH_SECONDS) runs beside
 * the request that found it due: a slow or stuck storage read there does not hold up the
 * caller's answer (it did, every few seconds, for one request and all arriving meanwhile — a
 * tail-latency source the half-load bench showed). Through the real host, Azurite and sandbox.
 */
import { CONTOSO, startTestGateway, type TestGateway } from '../support/gateway';

jest.setTimeout(120_000);

let gateway: TestGateway;
beforeAll(async () => {
  gateway = await startTestGateway({ env: { CONFIG_REFRESH_SECONDS: '3' } });
});
afterAll(() => gateway?.stop());

const submit = (key: string) =>
  gateway.post('/api/commands', {
    tenant: CONTOSO,
    cmdlet: 'Get-AcceptedDomain',
    parameters: {},
    idempotencyKey: key,
  });

it('answers while the registry and policy looks are still under way', async () => {
  expect((await submit('refresh-1')).status).toBe(202);
  const registry = gateway.services.tenants();
  let looks = 0;
  // A registry read that never ends (storage hanging): requests must not wait for it.
  const stuck = jest.spyOn(registry, 'refresh').mockImplementation(() => {
    looks++;
    return new Promise<void>(() => undefined);
  });
  try {
    const started = Date.now();
    const answers = await Promise.all([submit('refresh-2'), submit('refresh-3')]);
    expect(answers.map((a) => a.status)).toEqual([202, 202]);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(looks).toBeGreaterThan(0); // the look was started
  } finally {
    stuck.mockRestore();
  }
  expect((await submit('refresh-4')).status).toBe(202);
});
