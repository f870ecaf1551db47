/**
 * The sandbox's directory: tenants, app registrations with their generated credentials, the
 * gateway's managed identity and users. Entra ID, Key Vault and Exchange emulators all read
 * this one object, so a change made here (an attribute, a new certificate) is seen everywhere.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createAppCertificate, type AppCertificate } from '../pki/certificates';
import type { SandboxSeed, SeedApp, SeedTenant, SeedUser } from './seed';

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

export class SandboxDirectory {
  readonly seed: SandboxSeed;
  /** Generated certificates by name (seed `certificateNames`); newest last per app. */
  readonly certificates = new Map<string, AppCertificate>();
  /** Generated client secrets by name (seed `secretNames`), and generated keys (seed `keys`, base64). */
  readonly secrets = new Map<string, string>();
  /** Emits 'userChanged' (UserChange) after updateUser. */
  readonly events = new EventEmitter();
  private readonly extraCertificates = new Map<string, AppCertificate[]>();

  constructor(seed: SandboxSeed) {
    this.seed = seed;
    for (const app of seed.apps) {
      for (const name of app.certificateNames ?? []) {
        this.certificates.set(name, createAppCertificate({ commonName: name }));
      }
      for (const name of app.secretNames ?? []) this.secrets.set(name, generateClientSecret());
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

  /** Certificates currently registered on the app (keyCredentials). */
  appCertificates(appId: string): AppCertificate[] {
    const app = this.app(appId);
    if (!app) return [];
    const seeded = (app.certificateNames ?? []).map((n) => this.certificates.get(n)!).filter(Boolean);
    return [...seeded, ...(this.extraCertificates.get(app.appId) ?? [])];
  }

  /** Registers another certificate on an app (what an admin does before rotating). */
  addAppCertificate(appId: string, certificate: AppCertificate): void {
    const list = this.extraCertificates.get(appId) ?? [];
    list.push(certificate);
    this.extraCertificates.set(appId, list);
  }

  /** Removes a certificate from an app by SHA-1 thumbprint (after rotation, or to test failures). */
  removeAppCertificate(appId: string, sha1Thumbprint: string): void {
    const app = this.app(appId);
    if (!app) return;
    app.certificateNames = (app.certificateNames ?? []).filter((n) => this.certificates.get(n)?.sha1Thumbprint !== sha1Thumbprint);
    this.extraCertificates.set(appId, (this.extraCertificates.get(appId) ?? []).filter((c) => c.sha1Thumbprint !== sha1Thumbprint));
  }

  appSecrets(appId: string): string[] {
    const app = this.app(appId);
    return (app?.secretNames ?? []).map((n) => this.secrets.get(n)!).filter(Boolean);
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
  updateUser(tenantId: string, identity: string, changes: Partial<Omit<SeedUser, 'tenantId' | 'objectId'>>): UserChange {
    const user = this.user(tenantId, identity);
    if (!user) throw new Error(`No user '${identity}' in tenant '${tenantId}'`);
    const before = { ...user };
    Object.assign(user, changes);
    const change: UserChange = { tenantId: user.tenantId, userId: user.objectId, changed: changes, before, after: { ...user } };
    this.events.emit('userChanged', change);
    return change;
  }

  /** Creates a user (with a mailbox unless `mailbox: 'None'`), as an HR-driven joiner would be. */
  createUser(tenantId: string, input: Partial<Omit<SeedUser, 'tenantId' | 'objectId'>> & { alias: string; displayName: string }): SeedUser {
    const tenant = this.tenant(tenantId);
    if (!tenant) throw new Error(`No tenant '${tenantId}'`);
    if (this.user(tenant.tenantId, input.alias)) throw new Error(`User '${input.alias}' already exists`);
    const [givenName, ...rest] = input.displayName.split(' ');
    const user: SeedUser = { givenName, surname: rest.join(' ') || undefined, accountEnabled: true, mailbox: 'UserMailbox', ...input, tenantId: tenant.tenantId, objectId: randomUUID(), alias: input.alias.toLowerCase() };
    this.seed.users.push(user);
    this.events.emit('userChanged', { tenantId: user.tenantId, userId: user.objectId, changed: { ...input }, before: { ...user }, after: { ...user } } satisfies UserChange);
    return user;
  }
}
