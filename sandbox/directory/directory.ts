/**
 * The sandbox's directory: tenants, app registrations with their generated credentials, the
 * gateway's managed identity and users. Entra ID, Key Vault and Exchange emulators all read
 * this one object, so a change made here (an attribute, a new certificate) is seen everywhere.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createAppCertificate, type AppCertificate } from '../pki/certificates';
import { ExchangeSync } from './exchange-sync';
import type { SandboxSeed, SeedApp, SeedExchangeRbac, SeedResourceGrant, SeedTenant, SeedUser } from './seed';

export interface UserChange {
  tenantId: string;
  userId: string;
  changed: Partial<SeedUser>;
  before: SeedUser;
  after: SeedUser;
}

/** Client secrets look like Entra's: 40 characters with the `~` marker at position 4. */
export function generateClientSecret(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.';
  const bytes = randomBytes(40);
  const chars = Array.from(bytes, (b) => alphabet[b % alphabet.length]!);
  chars[3] = '8';
  chars[4] = 'Q';
  chars[5] = '~';
  return chars.join('');
}

/** What Entra keeps of a registered certificate: its public part and thumbprints. */
export type RegisteredCertificate = Pick<
  AppCertificate,
  'certPem' | 'derBase64' | 'sha1Thumbprint' | 'sha256Thumbprint' | 'notBefore' | 'notAfter'
>;

/** An app registration's keyCredentials entry (Graph: keyCredential). */
export interface KeyCredential {
  keyId: string;
  displayName: string;
  certificate: RegisteredCertificate;
  startDateTime: Date;
  endDateTime: Date;
  /** When it was added (ms): Entra honours it only after the emulator's propagation delay. */
  addedAt: number;
}

/** An app registration's passwordCredentials entry (Graph: passwordCredential), value included. */
export interface PasswordCredential {
  keyId: string;
  displayName: string;
  /** First three characters, as Graph shows them. */
  hint: string;
  secret: string;
  startDateTime: Date;
  endDateTime: Date;
  addedAt: number;
}

/**
 * An app registration's federated identity credential (Graph: federatedIdentityCredential): Entra
 * exchanges a token whose iss, sub and aud match it for a token of the app.
 */
export interface FederatedIdentityCredential {
  id: string;
  /** Unique on the app, URL friendly, at most 120 characters, immutable. */
  name: string;
  issuer: string;
  subject: string;
  audiences: string[];
  description?: string;
  addedAt: number;
}

/** What an app is in one tenant: its service principal there, with what that tenant granted it. */
export interface ServicePrincipalView {
  appId: string;
  tenantId: string;
  objectId: string;
  displayName: string;
  grants: SeedResourceGrant[];
  directoryRoles: string[];
  exchange?: SeedExchangeRbac;
}

/** Graph's limit of federated identity credentials per application. */
export const MAX_FEDERATED_CREDENTIALS = 20;

/** Entra's default client secret lifetime in the portal (recommended 180 days); the sandbox uses two years. */
const SECRET_LIFETIME_MS = 2 * 365 * 86_400_000;

/**
 * Conditional Access, reduced to what on-behalf-of meets: resources (grant audiences, e.g.
 * https://outlook.office365.com) whose tokens need multifactor authentication. A test turns a
 * policy on; a user token without `mfa` in `amr` is then challenged (AADSTS50076).
 */
export class ConditionalAccess {
  private readonly mfa = new Map<string, string>();

  requireMfa(resource: string, policyId: string = randomUUID()): void {
    this.mfa.set(resource.toLowerCase(), policyId);
  }

  clear(resource: string): void {
    this.mfa.delete(resource.toLowerCase());
  }

  /** The id of the policy that wants multifactor authentication for `resource`, if any. */
  mfaRequiredFor(resource: string): string | undefined {
    return this.mfa.get(resource.toLowerCase());
  }
}

export class SandboxDirectory {
  readonly seed: SandboxSeed;
  readonly conditionalAccess = new ConditionalAccess();
  /** Generated certificates by name (seed `certificateNames`); newest last per app. */
  readonly certificates = new Map<string, AppCertificate>();
  /** Generated client secrets by name (seed `secretNames`), and generated keys (seed `keys`, base64). */
  readonly secrets = new Map<string, string>();
  /** Emits 'userChanged' (UserChange) after updateUser. */
  readonly events = new EventEmitter();
  private readonly keyCredentialsByApp = new Map<string, KeyCredential[]>();
  private readonly passwordCredentialsByApp = new Map<string, PasswordCredential[]>();
  private readonly federatedCredentialsByApp = new Map<string, FederatedIdentityCredential[]>();
  /** What Exchange Online sees of the users: each change after the configured sync delay. */
  readonly exchangeSync = new ExchangeSync((objectId) => this.seed.users.find((u) => u.objectId === objectId));

  constructor(seed: SandboxSeed) {
    this.seed = seed;
    for (const app of seed.apps) {
      for (const name of app.certificateNames ?? []) {
        const certificate = createAppCertificate({ commonName: name });
        this.certificates.set(name, certificate);
        // Registered long before the sandbox started: honoured whatever the propagation delay.
        this.addKeyCredential(app.appId, certificate, { displayName: `CN=${name}`, addedAt: 0 });
      }
      for (const name of app.secretNames ?? []) {
        const secret = generateClientSecret();
        this.secrets.set(name, secret);
        this.addPasswordCredential(app.appId, { secret, displayName: name, addedAt: 0 });
      }
    }
    for (const name of seed.keys ?? []) this.secrets.set(name, randomBytes(32).toString('base64'));
  }

  get tenants(): SeedTenant[] {
    return this.seed.tenants;
  }

  /** A tenant by GUID, initial domain or mail domain (case-insensitive). */
  tenant(idOrDomain: string): SeedTenant | undefined {
    const key = idOrDomain.toLowerCase();
    return this.seed.tenants.find((t) => t.tenantId === key || t.domain === key || t.mailDomain === key);
  }

  app(appId: string): SeedApp | undefined {
    return this.seed.apps.find((a) => a.appId === appId.toLowerCase());
  }

  /** An API app by identifier URI (e.g. api://exo-gateway) or app id. */
  apiApp(audience: string): SeedApp | undefined {
    return this.seed.apps.find((a) => a.identifierUri === audience || a.appId === audience);
  }

  /**
   * The app registration's key credentials (certificates Entra accepts for client assertions),
   * kept here and only here: Key Vault holding a certificate says nothing about whether Entra
   * knows it. Ordered as added.
   */
  keyCredentials(appId: string): KeyCredential[] {
    const app = this.app(appId);
    return app ? [...(this.keyCredentialsByApp.get(app.appId) ?? [])] : [];
  }

  /** The app registration's password credentials (client secrets), with their values (sandbox only). */
  passwordCredentials(appId: string): PasswordCredential[] {
    const app = this.app(appId);
    return app ? [...(this.passwordCredentialsByApp.get(app.appId) ?? [])] : [];
  }

  /**
   * Registers a certificate on an app, as `az ad app credential reset --cert … --append` or the
   * portal's "Upload certificate" does. Its validity is the certificate's own.
   */
  addKeyCredential(
    appId: string,
    certificate: RegisteredCertificate,
    options: { displayName?: string; addedAt?: number } = {},
  ): KeyCredential {
    const app = this.app(appId);
    if (!app) throw new Error(`No sandbox app '${appId}'`);
    const list = this.keyCredentialsByApp.get(app.appId) ?? [];
    const existing = list.find((k) => k.certificate.sha1Thumbprint === certificate.sha1Thumbprint);
    if (existing) return existing;
    const credential: KeyCredential = {
      keyId: randomUUID(),
      displayName: options.displayName ?? `CN=${certificate.sha1Thumbprint.slice(0, 8)}`,
      certificate,
      startDateTime: certificate.notBefore,
      endDateTime: certificate.notAfter,
      addedAt: options.addedAt ?? Date.now(),
    };
    list.push(credential);
    this.keyCredentialsByApp.set(app.appId, list);
    return credential;
  }

  /** Removes a key credential by key id or SHA-1 thumbprint; true when one was removed. */
  removeKeyCredential(appId: string, keyIdOrThumbprint: string): boolean {
    const app = this.app(appId);
    if (!app) return false;
    const key = keyIdOrThumbprint.toLowerCase();
    const list = this.keyCredentialsByApp.get(app.appId) ?? [];
    const kept = list.filter((k) => k.keyId !== key && k.certificate.sha1Thumbprint.toLowerCase() !== key);
    this.keyCredentialsByApp.set(app.appId, kept);
    return kept.length !== list.length;
  }

  /** Adds a client secret, as Graph's addPassword does (a generated value unless one is given). */
  addPasswordCredential(
    appId: string,
    options: { secret?: string; displayName?: string; endDateTime?: Date; startDateTime?: Date; addedAt?: number } = {},
  ): PasswordCredential {
    const app = this.app(appId);
    if (!app) throw new Error(`No sandbox app '${appId}'`);
    const secret = options.secret ?? generateClientSecret();
    const start = options.startDateTime ?? new Date();
    const credential: PasswordCredential = {
      keyId: randomUUID(),
      displayName: options.displayName ?? 'sandbox secret',
      hint: secret.slice(0, 3),
      secret,
      startDateTime: start,
      endDateTime: options.endDateTime ?? new Date(start.getTime() + SECRET_LIFETIME_MS),
      addedAt: options.addedAt ?? Date.now(),
    };
    const list = this.passwordCredentialsByApp.get(app.appId) ?? [];
    list.push(credential);
    this.passwordCredentialsByApp.set(app.appId, list);
    return credential;
  }

  /** Removes a password credential by key id; true when one was removed. */
  removePasswordCredential(appId: string, keyId: string): boolean {
    const app = this.app(appId);
    if (!app) return false;
    const list = this.passwordCredentialsByApp.get(app.appId) ?? [];
    const kept = list.filter((p) => p.keyId !== keyId.toLowerCase());
    this.passwordCredentialsByApp.set(app.appId, kept);
    return kept.length !== list.length;
  }

  /**
   * The app's service principal in `tenantId`: its home tenant's, or one a consent there created
   * (seed `servicePrincipals`); undefined when the app is not present in that tenant.
   */
  servicePrincipal(appId: string, tenantId: string): ServicePrincipalView | undefined {
    const app = this.app(appId);
    const tenant = this.tenant(tenantId);
    if (!app || !tenant) return undefined;
    const base = { appId: app.appId, tenantId: tenant.tenantId, displayName: app.displayName };
    if (app.tenantId === tenant.tenantId)
      return {
        ...base,
        objectId: app.objectId,
        grants: app.grants ?? [],
        directoryRoles: app.directoryRoles ?? [],
        exchange: app.exchange,
      };
    const sp = app.servicePrincipals?.find((s) => s.tenantId === tenant.tenantId);
    return sp
      ? {
          ...base,
          objectId: sp.objectId,
          grants: sp.grants ?? [],
          directoryRoles: sp.directoryRoles ?? [],
          exchange: sp.exchange,
        }
      : undefined;
  }

  /**
   * Admin consent of a multi-tenant app in `tenantId` (the adminconsent endpoint): creates the
   * app's service principal there if it has none, granted the application permissions the app
   * requires (its own `grants`); no Entra role — consent assigns none. Returns the service principal.
   */
  consentServicePrincipal(appId: string, tenantId: string): ServicePrincipalView {
    const app = this.app(appId);
    const tenant = this.tenant(tenantId);
    if (!app || !tenant) throw new Error(`No app ${appId} or tenant ${tenantId}`);
    const existing = this.servicePrincipal(app.appId, tenant.tenantId);
    if (existing) return existing;
    (app.servicePrincipals ??= []).push({
      tenantId: tenant.tenantId,
      objectId: randomUUID(),
      grants: (app.grants ?? []).map((g) => ({ audience: g.audience, roles: [...g.roles] })),
      directoryRoles: [],
    });
    return this.servicePrincipal(app.appId, tenant.tenantId)!;
  }

  /** Assigns an Entra role (template id) to the app's service principal in `tenantId` (what an admin does there). */
  assignServicePrincipalRole(appId: string, tenantId: string, roleTemplateId: string): void {
    const app = this.app(appId);
    const tenant = this.tenant(tenantId);
    if (!app || !tenant) throw new Error(`No app ${appId} or tenant ${tenantId}`);
    if (app.tenantId === tenant.tenantId) {
      app.directoryRoles = [...new Set([...(app.directoryRoles ?? []), roleTemplateId])];
      return;
    }
    const sp = app.servicePrincipals?.find((s) => s.tenantId === tenant.tenantId);
    if (!sp) throw new Error(`App ${appId} has no service principal in ${tenantId}`);
    sp.directoryRoles = [...new Set([...(sp.directoryRoles ?? []), roleTemplateId])];
  }

  /** The app registration's federated identity credentials, ordered as added. */
  federatedIdentityCredentials(appId: string): FederatedIdentityCredential[] {
    const app = this.app(appId);
    return app ? (this.federatedCredentialsByApp.get(app.appId) ?? []).map((f) => ({ ...f })) : [];
  }

  /**
   * Adds a federated identity credential, with Graph's rules: a unique URL-friendly name of at most
   * 120 characters, a unique issuer + subject pair, at least one audience, at most 20 per app.
   * Throws an Error saying which rule was broken.
   */
  addFederatedIdentityCredential(
    appId: string,
    input: { name: string; issuer: string; subject: string; audiences: string[]; description?: string },
    options: { addedAt?: number } = {},
  ): FederatedIdentityCredential {
    const app = this.app(appId);
    if (!app) throw new Error(`No sandbox app '${appId}'`);
    const list = this.federatedCredentialsByApp.get(app.appId) ?? [];
    if (!/^[A-Za-z0-9_-]{1,120}$/.test(input.name))
      throw new Error('name must be 1-120 URL-friendly characters (letters, digits, - and _)');
    if (!input.issuer || !input.subject) throw new Error('issuer and subject are required');
    if (!input.audiences.length) throw new Error('audiences must have one value');
    if (list.some((f) => f.name === input.name)) throw new Error(`A credential named '${input.name}' exists`);
    if (list.some((f) => f.issuer === input.issuer && f.subject === input.subject))
      throw new Error('The combination of issuer and subject must be unique on the app');
    if (list.length >= MAX_FEDERATED_CREDENTIALS)
      throw new Error(`An application has at most ${MAX_FEDERATED_CREDENTIALS} federated identity credentials`);
    const credential: FederatedIdentityCredential = {
      id: randomUUID(),
      name: input.name,
      issuer: input.issuer,
      subject: input.subject,
      audiences: [...input.audiences],
      ...(input.description ? { description: input.description } : {}),
      addedAt: options.addedAt ?? Date.now(),
    };
    this.federatedCredentialsByApp.set(app.appId, [...list, credential]);
    return { ...credential };
  }

  /** Changes issuer, subject or audiences of a federated credential (by name; the name is immutable). */
  updateFederatedIdentityCredential(
    appId: string,
    name: string,
    changes: Partial<Pick<FederatedIdentityCredential, 'issuer' | 'subject' | 'audiences' | 'description'>>,
  ): FederatedIdentityCredential {
    const app = this.app(appId);
    const existing = app && this.federatedCredentialsByApp.get(app.appId)?.find((f) => f.name === name);
    if (!app || !existing) throw new Error(`No federated credential '${name}' on app '${appId}'`);
    // A changed credential replicates like a new one (entra.credentials.propagationMs).
    Object.assign(existing, changes, changes.audiences ? { audiences: [...changes.audiences] } : {}, {
      addedAt: Date.now(),
    });
    return { ...existing };
  }

  /** Removes a federated credential by name or id; true when one was removed. */
  removeFederatedIdentityCredential(appId: string, nameOrId: string): boolean {
    const app = this.app(appId);
    if (!app) return false;
    const list = this.federatedCredentialsByApp.get(app.appId) ?? [];
    const kept = list.filter((f) => f.name !== nameOrId && f.id !== nameOrId);
    this.federatedCredentialsByApp.set(app.appId, kept);
    return kept.length !== list.length;
  }

  /** Certificates currently registered on the app (keyCredentials). */
  appCertificates(appId: string): RegisteredCertificate[] {
    return this.keyCredentials(appId).map((k) => k.certificate);
  }

  /** Registers another certificate on an app (what an admin does before rotating). */
  addAppCertificate(appId: string, certificate: RegisteredCertificate): void {
    this.addKeyCredential(appId, certificate);
  }

  /** Removes a certificate from an app by SHA-1 thumbprint (after rotation, or to test failures). */
  removeAppCertificate(appId: string, sha1Thumbprint: string): void {
    this.removeKeyCredential(appId, sha1Thumbprint);
  }

  /** Client secret values registered on the app. */
  appSecrets(appId: string): string[] {
    return this.passwordCredentials(appId).map((p) => p.secret);
  }

  users(tenantId: string): SeedUser[] {
    return this.seed.users.filter((u) => u.tenantId === tenantId);
  }

  /** A user by object id, UPN / primary SMTP address or alias. */
  user(tenantId: string, identity: string): SeedUser | undefined {
    const key = identity.toLowerCase();
    const tenant = this.tenant(tenantId);
    if (!tenant) return undefined;
    return this.users(tenant.tenantId).find(
      (u) => u.objectId === key || u.alias === key || this.upn(u) === key || `${u.alias}@${tenant.domain}` === key,
    );
  }

  /** UPN (= primary SMTP address) of a user: alias@mailDomain. */
  upn(user: SeedUser): string {
    const tenant = this.tenant(user.tenantId)!;
    return `${user.alias}@${tenant.mailDomain}`;
  }

  /** Changes user attributes and emits `userChanged` (the sandbox's source of Graph user events). */
  updateUser(
    tenantId: string,
    identity: string,
    changes: Partial<Omit<SeedUser, 'tenantId' | 'objectId'>>,
  ): UserChange {
    const user = this.user(tenantId, identity);
    if (!user) throw new Error(`No user '${identity}' in tenant '${tenantId}'`);
    const before = { ...user };
    this.exchangeSync.beforeChange(user.objectId, before);
    Object.assign(user, changes);
    this.exchangeSync.afterChange(user.objectId, user);
    const change: UserChange = {
      tenantId: user.tenantId,
      userId: user.objectId,
      changed: changes,
      before,
      after: { ...user },
    };
    this.events.emit('userChanged', change);
    return change;
  }

  /** Creates a user (with a mailbox unless `mailbox: 'None'`), as an HR-driven joiner would be. */
  createUser(
    tenantId: string,
    input: Partial<Omit<SeedUser, 'tenantId' | 'objectId'>> & { alias: string; displayName: string },
  ): SeedUser {
    const tenant = this.tenant(tenantId);
    if (!tenant) throw new Error(`No tenant '${tenantId}'`);
    if (this.user(tenant.tenantId, input.alias)) throw new Error(`User '${input.alias}' already exists`);
    const [givenName, ...rest] = input.displayName.split(' ');
    const user: SeedUser = {
      givenName,
      surname: rest.join(' ') || undefined,
      accountEnabled: true,
      mailbox: 'UserMailbox',
      ...input,
      tenantId: tenant.tenantId,
      objectId: randomUUID(),
      alias: input.alias.toLowerCase(),
    };
    this.exchangeSync.beforeChange(user.objectId, undefined);
    this.seed.users.push(user);
    this.exchangeSync.afterChange(user.objectId, user);
    this.events.emit('userChanged', {
      tenantId: user.tenantId,
      userId: user.objectId,
      changed: { ...input },
      before: { ...user },
      after: { ...user },
    } satisfies UserChange);
    return user;
  }

  /**
   * Many users at once, each with a mailbox (a large tenant, for paging tests and benches): as
   * createUser, in one pass and without a change event per user.
   */
  createUsers(tenantId: string, inputs: Array<{ alias: string; displayName: string }>): SeedUser[] {
    const tenant = this.tenant(tenantId);
    if (!tenant) throw new Error(`No tenant '${tenantId}'`);
    const taken = new Set(this.users(tenant.tenantId).map((u) => u.alias));
    return inputs.map((input) => {
      const alias = input.alias.toLowerCase();
      if (taken.has(alias)) throw new Error(`User '${alias}' already exists`);
      taken.add(alias);
      const [givenName, ...rest] = input.displayName.split(' ');
      const user: SeedUser = {
        givenName,
        surname: rest.join(' ') || undefined,
        accountEnabled: true,
        mailbox: 'UserMailbox',
        displayName: input.displayName,
        tenantId: tenant.tenantId,
        objectId: randomUUID(),
        alias,
      };
      this.exchangeSync.beforeChange(user.objectId, undefined);
      this.seed.users.push(user);
      this.exchangeSync.afterChange(user.objectId, user);
      return user;
    });
  }

  /**
   * A directory write to an attribute the gateway does not read (a phone number, an office):
   * Graph announces it as an update and the sync moves Exchange's WhenChangedUTC, nothing else.
   */
  touchUser(tenantId: string, identity: string): SeedUser {
    const user = this.user(tenantId, identity);
    if (!user) throw new Error(`No user '${identity}' in tenant '${tenantId}'`);
    this.exchangeSync.beforeChange(user.objectId, { ...user });
    this.exchangeSync.afterChange(user.objectId, user);
    return user;
  }

  /** Deletes a user (Entra's soft delete): gone from the directory at once, from Exchange after the sync delay. */
  deleteUser(tenantId: string, identity: string): SeedUser {
    const user = this.user(tenantId, identity);
    if (!user) throw new Error(`No user '${identity}' in tenant '${tenantId}'`);
    this.exchangeSync.beforeChange(user.objectId, { ...user });
    this.seed.users.splice(this.seed.users.indexOf(user), 1);
    this.exchangeSync.afterChange(user.objectId, undefined);
    this.events.emit('userDeleted', { tenantId: user.tenantId, userId: user.objectId, user: { ...user } });
    return user;
  }

  /** The users of a tenant as Exchange Online sees them (after the sync delay; see exchange-sync.ts). */
  exchangeUsers(tenantId: string): SeedUser[] {
    const tenant = this.tenant(tenantId);
    if (!tenant) return [];
    const replica = this.exchangeSync.replicaIds();
    // Nothing on its way (always so without a sync delay): Exchange sees the directory as it is.
    if (!replica.length) return this.users(tenant.tenantId);
    const ids = new Set([...this.users(tenant.tenantId).map((u) => u.objectId), ...replica]);
    return [...ids]
      .map((id) => this.exchangeSync.user(id))
      .filter((u): u is SeedUser => u !== undefined && u.tenantId === tenant.tenantId);
  }

  /** A user as Exchange Online sees it, by object id, UPN / primary SMTP address or alias. */
  exchangeUser(tenantId: string, identity: string): SeedUser | undefined {
    const key = identity.toLowerCase();
    const tenant = this.tenant(tenantId);
    if (!tenant) return undefined;
    return this.exchangeUsers(tenant.tenantId).find(
      (u) => u.objectId === key || u.alias === key || this.upn(u) === key || `${u.alias}@${tenant.domain}` === key,
    );
  }
}
