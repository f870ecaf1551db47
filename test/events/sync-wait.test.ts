/**
 * When does Exchange show an event's change (issue 14 item 6)? For a user seen before, only an
 * attribute the rules read proves it: WhenChangedUTC also moves when an earlier directory change
 * syncs late or an Exchange cmdlet writes the object, and taking such a stamp for the change
 * moved the snapshot past a leaver whose disabled account had not synced yet.
 */
import { exchangeShowsChange, type SyncEvidence } from '../../shared/events/sync-wait';

const EVENT = '2026-11-25T10:00:00.000Z';
const enabled = { AccountDisabled: false, Department: 'Sales' };
const disabled = { AccountDisabled: true, Department: 'Sales' };

const evidence = (o: Partial<SyncEvidence>): SyncEvidence => ({
  claimed: 'updated',
  eventTime: EVENT,
  before: enabled,
  after: enabled,
  changes: [],
  ...o,
});

describe('exchangeShowsChange', () => {
  it('a user seen before, WhenChangedUTC moved after the event, no attribute changed: not shown, the stamp named as a hint', () => {
    // The stamp of an unrelated write half a second after the disable (an earlier change syncing, a cmdlet).
    for (const whenChanged of ['2026-11-25T10:00:00.500Z', '2026-11-25T09:59:59.500Z', '2026-11-25T10:20:00.000Z']) {
      const seen = exchangeShowsChange(evidence({ whenChanged }));
      expect(seen).toEqual({ shown: false, reason: expect.stringMatching(/^no attribute the rules read has changed/) });
      expect((seen as { reason: string }).reason).toContain(`WhenChangedUTC ${whenChanged}`);
    }
    expect(exchangeShowsChange(evidence({ whenChanged: '2026-11-25T09:00:00.000Z' }))).toEqual({
      shown: false,
      reason: expect.stringMatching(/^Exchange has not changed the user since the event/),
    });
  });

  it('a user seen before with an attribute the rules read changed: shown, whatever WhenChangedUTC says', () => {
    const changes = [{ attribute: 'AccountDisabled', from: false, to: true }];
    for (const whenChanged of [undefined, '2026-11-25T09:00:00.000Z', '2026-11-25T10:20:00.000Z'])
      expect(exchangeShowsChange(evidence({ after: disabled, changes, whenChanged }))).toEqual({ shown: true });
  });

  it('first sight (nothing to compare with): shown once WhenChangedUTC is at or after the event, within 1 s', () => {
    const first = (whenChanged?: string) => exchangeShowsChange(evidence({ before: undefined, whenChanged }));
    expect(first('2026-11-25T10:00:00.000Z')).toEqual({ shown: true });
    expect(first('2026-11-25T09:59:59.000Z')).toEqual({ shown: true });
    expect(first('2026-11-25T09:59:58.999Z')).toMatchObject({ shown: false });
    expect(first(undefined)).toMatchObject({ shown: false, reason: expect.stringMatching(/not reported/) });
  });

  it('deletions: shown only when Exchange no longer has the user; a user lost from Exchange is shown whatever the event said', () => {
    expect(exchangeShowsChange(evidence({ claimed: 'deleted' }))).toMatchObject({ shown: false });
    expect(exchangeShowsChange(evidence({ claimed: 'deleted', after: undefined }))).toEqual({ shown: true });
    expect(exchangeShowsChange(evidence({ after: undefined }))).toEqual({ shown: true });
    expect(exchangeShowsChange(evidence({ before: undefined, after: undefined }))).toMatchObject({
      shown: false,
      reason: 'Exchange does not have the user yet',
    });
  });
});
