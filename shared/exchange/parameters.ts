/**
 * Cmdlet parameters as the admin API reads them (docs/fidelity.md, facts §15). The EXO module
 * converts every hashtable-valued parameter of every cmdlet: each object gets
 * `"@odata.type": "#Exchange.GenericHashTable"` (unless it already names a type), nested objects
 * too, and an array of objects gets a sibling `"<name>@odata.type":
 * "#Collection(Exchange.GenericHashTable)"`. Without the type the service cannot tell what an
 * object is. Dates become ISO 8601 strings; everything else passes as it is.
 */

const TYPE = '@odata.type';
export const HASHTABLE_TYPE = '#Exchange.GenericHashTable';
export const HASHTABLE_COLLECTION_TYPE = '#Collection(Exchange.GenericHashTable)';

function isTable(value: unknown): value is Record<string, unknown> {
  return Boolean(value) && typeof value === 'object' && !Array.isArray(value) && !(value instanceof Date);
}

function encodeValue(value: unknown): unknown {
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map(encodeValue);
  if (isTable(value)) return encodeTable(value);
  return value;
}

/** The entries of one level, encoded, with the collection annotation beside each array of tables. */
function encodeEntries(table: Record<string, unknown>): Array<[string, unknown]> {
  const out: Array<[string, unknown]> = [];
  for (const [key, value] of Object.entries(table)) {
    out.push([key, encodeValue(value)]);
    const annotation = `${key}${TYPE}`;
    if (Array.isArray(value) && value.length > 0 && value.every(isTable) && !(annotation in table))
      out.push([annotation, HASHTABLE_COLLECTION_TYPE]);
  }
  return out;
}

function encodeTable(table: Record<string, unknown>): Record<string, unknown> {
  const entries = encodeEntries(table);
  // Object.fromEntries defines own properties: a key such as "__proto__" stays data.
  return Object.fromEntries(
    typeof table[TYPE] === 'string' ? entries : [[TYPE, HASHTABLE_TYPE], ...entries.filter(([k]) => k !== TYPE)],
  );
}

/** A cmdlet's parameters as sent in `CmdletInput.Parameters`. */
export function encodeParameters(parameters: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(encodeEntries(parameters));
}
