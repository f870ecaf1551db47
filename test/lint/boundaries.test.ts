/**
 * The import boundaries eslint.config.js enforces, through the ESLint Node API on the real
 * config: the domain (shared/commands, policy, events, …) imports neither shared/http nor
 * @azure/functions; the adapters in functions/ may; the older rules still hold for the domain
 * (a later no-restricted-imports block replaces an earlier one, so each must list them all).
 */
import { join } from 'node:path';
import { ESLint } from 'eslint';

const cwd = join(__dirname, '..', '..');
// ESLint would import() eslint.config.js itself, which Jest's module sandbox does not allow:
// the same file is handed over, required.
const eslint = new ESLint({ cwd, overrideConfigFile: true, overrideConfig: require(join(cwd, 'eslint.config.js')) });

async function restricted(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  return result!.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

describe('domain import boundaries', () => {
  it('refuses shared/http in the domain', async () => {
    expect(
      await restricted(
        'shared/commands/x.ts',
        "import { HttpProblem } from '../http/problem';\nexport const x = HttpProblem;\n",
      ),
    ).toEqual([expect.stringContaining('must not import shared/http')]);
    for (const folder of ['policy', 'events', 'selfservice', 'exchange', 'credentials', 'config', 'core']) {
      expect(
        await restricted(
          `shared/${folder}/x.ts`,
          "import type { Authenticate } from '../http/caller';\nexport type X = Authenticate;\n",
        ),
      ).toHaveLength(1);
    }
  });

  it('refuses @azure/functions in the domain', async () => {
    expect(
      await restricted(
        'shared/commands/x.ts',
        "import type { HttpRequest } from '@azure/functions';\nexport type X = HttpRequest;\n",
      ),
    ).toEqual([expect.stringContaining('Functions runtime')]);
  });

  it('keeps the older rules for the domain: no sandbox, no functions/, no OpenTelemetry SDK', async () => {
    expect(
      await restricted('shared/commands/x.ts', "import { a } from '../../sandbox/cloud/cloud';\nexport const x = a;\n"),
    ).toHaveLength(1);
    expect(
      await restricted('shared/commands/x.ts', "import { a } from '../../functions/index';\nexport const x = a;\n"),
    ).toHaveLength(1);
    expect(
      await restricted(
        'shared/commands/x.ts',
        "import { a } from '@opentelemetry/sdk-trace-base';\nexport const x = a;\n",
      ),
    ).toHaveLength(1);
  });

  it('lets the adapters import shared/http and the domain import its own neighbours', async () => {
    expect(
      await restricted(
        'functions/x.ts',
        "import { HttpProblem } from '../shared/http/problem';\nimport type { HttpRequest } from '@azure/functions';\nexport const x = HttpProblem;\nexport type X = HttpRequest;\n",
      ),
    ).toEqual([]);
    expect(
      await restricted(
        'shared/commands/x.ts',
        "import { GatewayError } from '../core/errors';\nexport const x = GatewayError;\n",
      ),
    ).toEqual([]);
    // shared/exchange has an http.ts of its own.
    expect(await restricted('shared/exchange/x.ts', "import { a } from './http';\nexport const x = a;\n")).toEqual([]);
  });
});
