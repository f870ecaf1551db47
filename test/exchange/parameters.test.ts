/**
 * Cmdlet parameters as the admin API reads them: every object is a `#Exchange.GenericHashTable`
 * (nested ones too), an array of objects carries `<name>@odata.type:
 * #Collection(Exchange.GenericHashTable)` (docs/fidelity.md facts §15). The sandbox refuses an
 * untyped object (test/sandbox/exchange.test.ts); this is the encoding on its own.
 */
import { encodeParameters } from '../../shared/exchange/session';

const HASHTABLE_TYPE = '#Exchange.GenericHashTable';
const HASHTABLE_COLLECTION_TYPE = '#Collection(Exchange.GenericHashTable)';

describe('encodeParameters', () => {
  it('types every object parameter, not only { add, remove } edits', () => {
    expect(
      encodeParameters({
        Identity: 'a@contoso.com',
        AdvancedSettings: { Key: 'v', Other: 2 },
        EmailAddresses: { Add: ['smtp:x@contoso.com'], Remove: [] },
      }),
    ).toEqual({
      Identity: 'a@contoso.com',
      AdvancedSettings: { '@odata.type': HASHTABLE_TYPE, Key: 'v', Other: 2 },
      EmailAddresses: { '@odata.type': HASHTABLE_TYPE, Add: ['smtp:x@contoso.com'], Remove: [] },
    });
  });

  it('types nested hashtables and annotates arrays of hashtables with the collection type', () => {
    const encoded = encodeParameters({
      Outer: { Inner: { Deep: { x: 1 } }, List: [{ a: 1 }, { b: 2 }] },
      Rules: [{ Name: 'r1' }, { Name: 'r2', Nested: { y: true } }],
    });
    expect(encoded).toEqual({
      Outer: {
        '@odata.type': HASHTABLE_TYPE,
        Inner: { '@odata.type': HASHTABLE_TYPE, Deep: { '@odata.type': HASHTABLE_TYPE, x: 1 } },
        List: [
          { '@odata.type': HASHTABLE_TYPE, a: 1 },
          { '@odata.type': HASHTABLE_TYPE, b: 2 },
        ],
        'List@odata.type': HASHTABLE_COLLECTION_TYPE,
      },
      Rules: [
        { '@odata.type': HASHTABLE_TYPE, Name: 'r1' },
        { '@odata.type': HASHTABLE_TYPE, Name: 'r2', Nested: { '@odata.type': HASHTABLE_TYPE, y: true } },
      ],
      'Rules@odata.type': HASHTABLE_COLLECTION_TYPE,
    });
  });

  it('keeps a type the caller gave, leaves scalars, strings and empty arrays alone, and dates become ISO strings', () => {
    expect(
      encodeParameters({
        T: { '@odata.type': '#Exchange.ByteArrayType', Data: 'AAE=' },
        S: ['a', 'b'],
        E: [],
        N: null,
        F: false,
        When: new Date('2026-01-01T00:00:00Z'),
      }),
    ).toEqual({
      T: { '@odata.type': '#Exchange.ByteArrayType', Data: 'AAE=' },
      S: ['a', 'b'],
      E: [],
      N: null,
      F: false,
      When: '2026-01-01T00:00:00.000Z',
    });
  });

  it('keeps keys such as __proto__ as plain data', () => {
    const table = JSON.parse('{"Settings":{"__proto__":{"polluted":true},"k":"v"}}') as Record<string, unknown>;
    const encoded = encodeParameters(table) as { Settings: Record<string, unknown> };
    expect(Object.keys(encoded.Settings)).toEqual(['@odata.type', '__proto__', 'k']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(encoded.Settings)).toBe(Object.prototype);
  });
});
