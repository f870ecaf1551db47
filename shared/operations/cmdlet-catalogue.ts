/**
 * The published cmdlet catalogue (GET /api/cmdlets, the OpenAPI document, the portal): each
 * supported cmdlet's endpoint family, parameters with their types and v2.0 endpoint
 * (shared/exchange/cmdlet-catalog.ts), joined with what the worker knows of its effects —
 * read-only, idempotent, decidable by a read-back (effects.ts) — and the named operations that
 * run it (catalog.ts).
 */
import { CMDLET_CATALOG, type ParameterType, type V2Endpoint } from '../exchange/cmdlet-catalog';
import { ENDPOINTS, type EndpointDescription } from '../exchange/endpoints';
import { OPERATIONS } from './catalog';
import { cmdletEffects } from './effects';

export interface CmdletDescription {
  name: string;
  family: string;
  readOnly: boolean;
  /** Running it twice leaves what running it once left. */
  idempotent: boolean;
  /** After a lost answer, a read tells whether it took effect. */
  readBack: boolean;
  parameters: Readonly<Record<string, ParameterType>>;
  v2?: V2Endpoint;
  /** Named operations that run it. */
  operations: string[];
}

export interface CmdletCatalogue {
  endpointFamilies: readonly EndpointDescription[];
  cmdlets: CmdletDescription[];
}

/** The cmdlets each named operation runs, from its steps for its documented example. */
const OPERATION_CMDLETS: ReadonlyArray<{ name: string; cmdlets: Set<string> }> = OPERATIONS.map((o) => ({
  name: o.name,
  cmdlets: new Set(o.steps(o.input.parse(o.example) as never).map((s) => s.cmdlet.toLowerCase())),
}));

function operationsUsing(cmdlet: string): string[] {
  return OPERATION_CMDLETS.filter((o) => o.cmdlets.has(cmdlet.toLowerCase())).map((o) => o.name);
}

export function cmdletCatalogue(): CmdletCatalogue {
  return {
    endpointFamilies: ENDPOINTS,
    cmdlets: CMDLET_CATALOG.map((c) => {
      const effects = cmdletEffects(c.name);
      return {
        name: c.name,
        family: c.family,
        readOnly: effects.readOnly,
        idempotent: effects.idempotent,
        readBack: effects.readBack !== undefined,
        parameters: c.parameters,
        ...(c.v2 ? { v2: c.v2 } : {}),
        operations: operationsUsing(c.name),
      };
    }),
  };
}
