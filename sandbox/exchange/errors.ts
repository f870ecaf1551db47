/**
 * Exchange admin API error answers, shaped like the real service's live answers
 * (rknightion/graph2otel `internal/exoclient/errors.go`; Microsoft Q&A 1023619):
 *   {"error":{"code":"BadRequest","message":"Invalid Operation",
 *    "details":[{"code":"Client","target":"<target>","message":"|<ExceptionType>|<text>"}],
 *    "innererror":{"message":"Invalid Operation","type":"Microsoft.Exchange.Admin.OData.Core.ODataServiceException",
 *      "stacktrace":"…","internalexception":{"message":"<text>","type":"<ExceptionType>","stacktrace":""}}}}
 * `error.message` says nothing; the exception type and text are in `details[0].message`
 * (`<errorId>|<type>|<text>`, the errorId often empty) and in `innererror.internalexception`
 * (lower case). Some answers carry only one of the two (the body's form). Nearly every failure
 * is HTTP 400; an unauthorized or unknown cmdlet is a 403 whose body is not JSON at all.
 */

/** Which parts of the error a body carries: both (as captured for cmdlet errors), or one of them. */
export type ErrorBodyForm = 'full' | 'detailsOnly' | 'innerOnly';

/** Exchange's error category (`details[0].code`): "Client" as captured; the others assumed. */
export type ExchangeErrorCategory = 'Client' | 'ServerOperation' | 'ServerTransient';

export interface CmdletErrorOptions {
  /** details[0].code (default "Client"). */
  category?: ExchangeErrorCategory;
  /** Text before the first '|' of details[0].message (default empty, as captured). */
  errorId?: string;
  /** details[0].target. */
  target?: string;
  /** The form this error has unless the emulator forces one (default 'full'). */
  form?: ErrorBodyForm;
}

const STACK = [
  '   at Microsoft.Exchange.AdminApi.CommandInvocation.CommandInvocation.InvokeCommand(QueryContext queryContext, CmdletInvokeInputType cmdletInvokeInputType)',
  '   at Microsoft.Exchange.Admin.OData.Core.PathSegmentToExpressionTranslator.Translate(OperationImportSegment segment)',
  '   at Microsoft.Exchange.Admin.OData.Core.QueryContext.ResolveQuery(ODataContext context, Int32 level)',
  '   at Microsoft.Exchange.Admin.OData.Core.Handlers.OperationHandler.Process(IODataRequestMessage requestMessage, IODataResponseMessage responseMessage)',
].join('\r\n');

export class CmdletError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly exceptionType: string,
    message: string,
    readonly options: CmdletErrorOptions = {},
  ) {
    super(message);
  }

  /** The JSON body; `form` overrides the error's own form. */
  body(form: ErrorBodyForm = this.options.form ?? 'full'): Record<string, unknown> {
    const error: Record<string, unknown> = { code: this.code, message: 'Invalid Operation' };
    if (form !== 'innerOnly') {
      error.details = [
        {
          code: this.options.category ?? 'Client',
          target: this.options.target ?? '',
          message: `${this.options.errorId ?? ''}|${this.exceptionType}|${this.message}`,
        },
      ];
    }
    if (form !== 'detailsOnly') {
      error.innererror = {
        message: 'Invalid Operation',
        type: 'Microsoft.Exchange.Admin.OData.Core.ODataServiceException',
        stacktrace: STACK,
        internalexception: { message: this.message, type: this.exceptionType, stacktrace: '' },
      };
    }
    return { error };
  }
}

/**
 * A refusal answered with HTTP 403 and a body that is not JSON: a run of NUL bytes (graph2otel,
 * live: an unauthorized or unknown cmdlet, and an app without an Exchange-capable role).
 */
export class ForbiddenAnswer extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }

  /** The raw body of a single answer. */
  static body(): Buffer {
    return Buffer.alloc(1024);
  }

  /** The body of a `$batch` item (JSON has no raw bytes: a string of NULs, assumed). */
  static itemBody(): string {
    return '\u0000'.repeat(256);
  }
}

const SERVER = 'SN7PR04A001DC02.NAMPR04A001.PROD.OUTLOOK.COM';

const client = (exceptionType: string, message: string, target = '') =>
  new CmdletError(400, 'BadRequest', exceptionType, message, { target });

export const exo = {
  notFound: (identity: string) =>
    client(
      'Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException',
      `The operation couldn't be performed because object '${identity}' couldn't be found on '${SERVER}'.`,
      identity,
    ),
  recipientNotFound: (identity: string) =>
    client(
      'Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException',
      `Couldn't find object "${identity}". Please make sure that it was spelled correctly or specify a different object.`,
      identity,
    ),
  memberExists: (member: string, group: string) =>
    client(
      'Microsoft.Exchange.Management.Tasks.MemberAlreadyExistsException',
      `The recipient "${member}" is already a member of the group "${group}".`,
      group,
    ),
  memberMissing: (member: string, group: string) =>
    client(
      'Microsoft.Exchange.Management.Tasks.MemberNotFoundException',
      `The recipient "${member}" isn't a member of the group "${group}".`,
      group,
    ),
  needsGroupManager: (group: string) =>
    client(
      'Microsoft.Exchange.Configuration.Tasks.OperationRequiresGroupManagerException',
      `You don't have sufficient permissions. This operation can only be performed by a manager of the group "${group}".`,
      group,
    ),
  unknownParameter: (name: string) =>
    client(
      'System.Management.Automation.ParameterBindingException',
      `A parameter cannot be found that matches parameter name '${name}'.`,
    ),
  missingParameters: (names: string[]) =>
    client(
      'System.Management.Automation.ParameterBindingException',
      `Cannot process command because of one or more missing mandatory parameters: ${names.join(' ')}.`,
    ),
  badArgument: (name: string, value: unknown, type: string) =>
    client(
      'System.Management.Automation.ParameterBindingException',
      `Cannot process argument transformation on parameter '${name}'. Cannot convert value "${String(JSON.stringify(value)).slice(0, 80)}" to type "${type}".`,
    ),
  invalidValue: (name: string, message: string) =>
    client(
      'Microsoft.Exchange.Data.DataValidationException',
      `Cannot validate argument on parameter '${name}'. ${message}`,
    ),
  /** An unknown cmdlet is refused like one the app may not run: 403 with a NUL body (graph2otel). */
  unknownCmdlet: (name: string) => new ForbiddenAnswer(`The term '${name}' is not recognized as a name of a cmdlet.`),
  invalidOperation: (message: string) =>
    client('Microsoft.Exchange.Configuration.Tasks.InvalidOperationInDehydratedContextException', message),
  taskInvalid: (message: string) => client('Microsoft.Exchange.Data.Directory.ADInvalidOperationException', message),
  /** The routing error of a mailbox cmdlet sent to the wrong server (type: public clients; text assumed). */
  proxyNotAvailable: (identity: string) =>
    client(
      'Microsoft.Exchange.Configuration.Tasks.CmdletProxyNotAvailableException',
      `Cmdlet needs proxy, but proxy is not available for the mailbox '${identity}'. Required Server FQDN: ${SERVER}. Route the request to the mailbox (X-AnchorMailbox).`,
      identity,
    ),
};

/**
 * Transient failures Exchange reports as HTTP 400 cmdlet errors. The short names are sourced:
 * the EXO module retries DCOverloaded, SuitabilityDirectory, ServerInMM, ADServerSettingsChanged
 * and StorageTransient exceptions (`$RetryableExceptions`, matched in details[0].message);
 * jflieben/M365PermissionsV2 `ExchangeRestClient.cs` retries bodies containing
 * CmdletProxyNotAvailableFailure, ServerBusyException, TransientException and
 * BackendCommunicationException. Namespaces, texts and details codes are **assumed**.
 */
export const TRANSIENT_400 = {
  serverBusy: {
    type: 'Microsoft.Exchange.Data.Storage.ServerBusyException',
    text: 'The server is too busy to process the request right now. Try again later.',
  },
  backendCommunication: {
    type: 'Microsoft.Exchange.Configuration.Tasks.BackendCommunicationException',
    text: 'An error occurred while communicating with the backend server. Try again later.',
  },
  cmdletProxyNotAvailable: {
    type: 'Microsoft.Exchange.Configuration.Tasks.CmdletProxyNotAvailableException',
    errorId: 'CmdletProxyNotAvailableFailure',
    text: `Cmdlet needs proxy but the proxy is not available. Required Server FQDN: ${'SN7PR04MB7711.namprd04.prod.outlook.com'}; Required Server Version: 15.20.8293.0.`,
  },
  dcOverloaded: {
    type: 'Microsoft.Exchange.Data.Directory.DCOverloadedException',
    text: `The domain controller SN7PR04A001DC02.NAMPR04A001.PROD.OUTLOOK.COM is overloaded. Try again later.`,
  },
  suitabilityDirectory: {
    type: 'Microsoft.Exchange.Data.Directory.SuitabilityDirectoryException',
    text: 'The directory server SN7PR04A001DC02.NAMPR04A001.PROD.OUTLOOK.COM is not suitable for this operation right now.',
  },
  serverInMM: {
    type: 'Microsoft.Exchange.Data.Directory.ServerInMMException',
    text: 'The server SN7PR04MB7711.namprd04.prod.outlook.com is in maintenance mode.',
  },
  adServerSettingsChanged: {
    type: 'Microsoft.Exchange.Data.Directory.ADServerSettingsChangedException',
    text: 'The directory server settings changed while the operation ran.',
  },
  storageTransient: {
    type: 'Microsoft.Exchange.Data.Storage.StorageTransientException',
    text: 'A transient storage error occurred. Try again.',
    category: 'ServerTransient' as const,
  },
  transientException: {
    type: 'Microsoft.Exchange.Data.TransientException',
    text: 'A transient error occurred. Try again.',
    category: 'ServerTransient' as const,
  },
} satisfies Record<string, { type: string; text: string; errorId?: string; category?: ExchangeErrorCategory }>;

export type Transient400Kind = keyof typeof TRANSIENT_400;
export const TRANSIENT_400_KINDS = Object.keys(TRANSIENT_400) as Transient400Kind[];

export function transient400(kind: Transient400Kind): CmdletError {
  const fault: { type: string; text: string; errorId?: string; category?: ExchangeErrorCategory } = TRANSIENT_400[kind];
  return new CmdletError(400, 'BadRequest', fault.type, fault.text, {
    category: fault.category ?? 'ServerOperation',
    errorId: fault.errorId,
  });
}

/** A continuation (`@odata.nextLink`) the service no longer honours: as captured (Microsoft Q&A 1023619), innererror only. */
export function paginationExpired(): CmdletError {
  return new CmdletError(
    400,
    'BadRequest',
    'System.Exception',
    'Expired or Invalid pagination request. Default Expiry time is 00:30:00',
    { form: 'innerOnly' },
  );
}

/** OData error for problems with the request itself (not a cmdlet's failure). */
export function requestError(code: string, message: string): Record<string, unknown> {
  return { error: { code, message } };
}
