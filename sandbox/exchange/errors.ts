/**
 * Exchange admin API error answers, shaped like the real service's:
 *   {"error":{"code":"NotFound","message":"Error executing cmdlet","details":[{"code":"Context",
 *    "target":"","message":"Ex6F9304|Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException|<text>"}],
 *    "innererror":{"message":"Error executing cmdlet","type":"Microsoft.Exchange.Admin.OData.Core.ODataServiceException", …}}}
 * The `Ex<hex>|<ExceptionType>|<text>` detail is what clients classify on.
 */
import { createHash } from 'node:crypto';

export class CmdletError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly exceptionType: string,
    message: string,
  ) {
    super(message);
  }

  body(): Record<string, unknown> {
    const tag = `Ex${createHash('sha1').update(this.exceptionType).digest('hex').slice(0, 6).toUpperCase()}`;
    return {
      error: {
        code: this.code,
        message: 'Error executing cmdlet',
        details: [{ code: 'Context', target: '', message: `${tag}|${this.exceptionType}|${this.message}` }],
        innererror: {
          message: 'Error executing cmdlet',
          type: 'Microsoft.Exchange.Admin.OData.Core.ODataServiceException',
          internalException: { message: this.message, type: this.exceptionType },
        },
      },
    };
  }
}

const SERVER = 'SN7PR04A001DC02.NAMPR04A001.PROD.OUTLOOK.COM';

export const exo = {
  notFound: (identity: string) =>
    new CmdletError(404, 'NotFound', 'Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException', `The operation couldn't be performed because object '${identity}' couldn't be found on '${SERVER}'.`),
  recipientNotFound: (identity: string) =>
    new CmdletError(404, 'NotFound', 'Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException', `Couldn't find object "${identity}". Please make sure that it was spelled correctly or specify a different object.`),
  memberExists: (member: string, group: string) =>
    new CmdletError(400, 'BadRequest', 'Microsoft.Exchange.Management.Tasks.MemberAlreadyExistsException', `The recipient "${member}" is already a member of the group "${group}".`),
  memberMissing: (member: string, group: string) =>
    new CmdletError(400, 'BadRequest', 'Microsoft.Exchange.Management.Tasks.MemberNotFoundException', `The recipient "${member}" isn't a member of the group "${group}".`),
  needsGroupManager: (group: string) =>
    new CmdletError(400, 'BadRequest', 'Microsoft.Exchange.Configuration.Tasks.OperationRequiresGroupManagerException', `You don't have sufficient permissions. This operation can only be performed by a manager of the group "${group}".`),
  unknownParameter: (name: string) =>
    new CmdletError(400, 'BadRequest', 'System.Management.Automation.ParameterBindingException', `A parameter cannot be found that matches parameter name '${name}'.`),
  missingParameters: (names: string[]) =>
    new CmdletError(400, 'BadRequest', 'System.Management.Automation.ParameterBindingException', `Cannot process command because of one or more missing mandatory parameters: ${names.join(' ')}.`),
  badArgument: (name: string, value: unknown, type: string) =>
    new CmdletError(400, 'BadRequest', 'System.Management.Automation.ParameterBindingException', `Cannot process argument transformation on parameter '${name}'. Cannot convert value "${String(JSON.stringify(value)).slice(0, 80)}" to type "${type}".`),
  invalidValue: (name: string, message: string) =>
    new CmdletError(400, 'BadRequest', 'Microsoft.Exchange.Data.DataValidationException', `Cannot validate argument on parameter '${name}'. ${message}`),
  unknownCmdlet: (name: string) =>
    new CmdletError(400, 'BadRequest', 'System.Management.Automation.CommandNotFoundException', `The term '${name}' is not recognized as a name of a cmdlet, function, script file, or executable program. Check the spelling of the name, or if a path was included, verify that the path is correct and try again.`),
  invalidOperation: (message: string) => new CmdletError(400, 'BadRequest', 'Microsoft.Exchange.Configuration.Tasks.InvalidOperationInDehydratedContextException', message),
  taskInvalid: (message: string) => new CmdletError(400, 'BadRequest', 'Microsoft.Exchange.Data.Directory.ADInvalidOperationException', message),
  /** The routing error of a mailbox cmdlet sent to the wrong server (type: public clients; text assumed). */
  proxyNotAvailable: (identity: string) =>
    new CmdletError(400, 'BadRequest', 'Microsoft.Exchange.Configuration.Tasks.CmdletProxyNotAvailableException', `Cmdlet needs proxy, but proxy is not available for the mailbox '${identity}'. Required Server FQDN: ${SERVER}. Route the request to the mailbox (X-AnchorMailbox).`),
};

/** OData error for problems with the request itself (not a cmdlet's failure). */
export function requestError(code: string, message: string): Record<string, unknown> {
  return { error: { code, message } };
}
