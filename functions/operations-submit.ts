/**
 * POST /api/operations/{name} — run a named operation (Power Automate, rules, portal): the
 * body is `tenant`, optional `idempotencyKey` and the operation's fields. Validated, then
 * checked against the policy, then accepted like a command: 202 + Location to poll.
 */
import { defineHttp, type FunctionDefinition } from '../shared/hosting/definition';
import type { AppServices } from '../shared/app/services';
import { acceptedResponse, requestCorrelationId } from '../shared/http/async';
import { traceHttp } from '../shared/http/tracing';
import { HttpProblem, answerProblems } from '../shared/http/problem';
import { readJsonObject } from '../shared/http/body';
import { publicView } from '../shared/commands/model';
import { OPERATIONS, findOperation } from '../shared/operations/catalog';

export function operationsSubmitFunction(services: AppServices): FunctionDefinition {
  return defineHttp('operationsSubmit', {
    route: 'operations/{name}',
    methods: ['POST'],
    authLevel: 'anonymous',
    handler: (request) => {
      const correlationId = requestCorrelationId(request);
      const log = services.logger.child({ correlationId });
      return traceHttp(request, { name: 'POST /api/operations/{name}', route: '/api/operations/{name}', correlationId, telemetry: services.telemetry }, () =>
        answerProblems(
        request,
        async () => {
          const caller = await services.authenticate(request);
          const name = request.params.name ?? '';
          const operation = findOperation(name);
          if (!operation) {
            throw new HttpProblem({ status: 404, title: 'Unknown operation', detail: `There is no operation '${name.slice(0, 60)}'. Known operations: ${OPERATIONS.map((o) => o.name).join(', ')}.` });
          }
          const body = await readJsonObject(request);
          await services.ready();
          const commands = services.commands();
          const parsed = commands.parseOperation(operation, body, request.headers.get('idempotency-key'));
          const tenant = services.tenants().get(parsed.tenant)!;
          const decision = await services.policy().authorize({ caller, tenant, target: { kind: 'operation', name: operation.name }, parameters: parsed.input ?? {} });
          const { command } = await commands.submit(caller, parsed, { correlationId, policyRule: decision.rule });
          const location = `/api/commands/${command.id}`;
          if (commands.isFinished(command)) return { status: 200, headers: { location }, jsonBody: publicView(command) };
          return acceptedResponse(location, publicView(command), 2);
        },
        (error) => log.error({ err: error }, 'operationsSubmit failed'),
        ),
      );
    },
  });
}
