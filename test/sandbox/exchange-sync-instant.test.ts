/**
 * One cmdlet reads one version of each object (issue 14 item 6, the events-sync flake): a sync
 * landing while a Get-User runs must not give a row with the old attributes and the new
 * WhenChangedUTC. On a loaded machine a cmdlet can take milliseconds, and the sandbox read the
 * clock several times in one row; the product then took the new stamp for "Exchange has the
 * change" while the attribute still showed the old value. A clock that advances on every
 * reading makes that window certain here instead of rare.
 */
import { SandboxDirectory } from '../../sandbox/directory/directory';
import { defaultSeed } from '../../sandbox/directory/seed';
import { TenantRecipients } from '../../sandbox/exchange/recipients';
import { runCmdlet } from '../../sandbox/exchange/cmdlets';

const CONTOSO = '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01';

describe('sandbox Exchange: one cmdlet, one instant', () => {
  it('a Get-User row never pairs the old attributes with the WhenChangedUTC of the sync that changes them', () => {
    const directory = new SandboxDirectory(defaultSeed());
    const sync = directory.exchangeSync;
    // A slow machine: every reading of the clock is a millisecond later than the one before.
    let now = Date.now();
    sync.clock = () => ++now;
    sync.configure({ syncDelayMs: 200, timeScale: 1 });
    const recipients = new TenantRecipients(directory.tenant(CONTOSO)!, directory);
    const getUser = () => runCmdlet(recipients, 'Get-User', { Identity: 'grady.archie' }).value[0]!;

    const stampBefore = Date.parse(String(getUser().WhenChangedUTC));
    directory.updateUser(CONTOSO, 'grady.archie', { accountEnabled: false });
    const due = now + 200;
    const rows: Array<{ AccountDisabled: unknown; WhenChangedUTC: number }> = [];
    // Read again and again until well after the sync is due: one of these reads spans the due time.
    while (now < due + 50) {
      const row = getUser();
      rows.push({ AccountDisabled: row.AccountDisabled, WhenChangedUTC: Date.parse(String(row.WhenChangedUTC)) });
    }
    expect(rows.some((r) => r.AccountDisabled === false)).toBe(true);
    expect(rows.some((r) => r.AccountDisabled === true)).toBe(true);
    // Each row is one version: the old stamp with the old value, the sync's stamp with the new one.
    for (const row of rows) {
      expect(row).toEqual(
        row.AccountDisabled
          ? { AccountDisabled: true, WhenChangedUTC: expect.any(Number) }
          : { AccountDisabled: false, WhenChangedUTC: stampBefore },
      );
      if (row.AccountDisabled) expect(row.WhenChangedUTC).toBeGreaterThan(stampBefore);
    }
  });
});
