/**
 * Seed data for the sandbox cloud: two tenants, the gateway's app registrations (one with
 * certificates, one with a client secret), the gateway's own managed identity, ~20 users with
 * HR attributes, shared mailboxes and distribution groups, and the Key Vault contents that
 * hold the app credentials. Certificates and secret values are generated when the sandbox
 * starts (see sandbox/cloud), so nothing secret is committed.
 */

/** Well-known identifiers the real cloud uses (public facts). */
export const WELL_KNOWN = {
  /** "Office 365 Exchange Online" resource app. */
  exchangeResourceAppId: '00000002-0000-0ff1-ce00-000000000000',
  exchangeAudience: 'https://outlook.office365.com',
  /** "Azure Key Vault" resource app. */
  keyVaultResourceAppId: 'cfa8b339-82a2-471a-a3c9-0fc0be7a4093',
  keyVaultAudience: 'https://vault.azure.net',
  /** Entra built-in role template ids (appear in `wids`). */
  roles: {
    exchangeAdministrator: '29232cdf-9323-42fd-ade2-1d097af3e4de',
    exchangeRecipientAdministrator: '31392ffb-586c-42d1-9346-e59415a2cc4e',
    globalAdministrator: '62e90394-69f5-4237-9190-012177145e10',
    globalReader: 'f2ef992c-3afb-46b9-b7cf-a126ee74c451',
    helpdeskAdministrator: '729827e3-9c14-49f7-bb1b-9608f156bbb8',
    securityReader: '5d6b6bb7-de71-4623-b4af-96380a352509',
    securityAdministrator: '194ae4cb-b126-40b2-bd5b-6091b380977d',
    complianceAdministrator: '17315797-102d-40b4-93e0-432062caca18',
    /** Every member user's wids contains this "default user" role. */
    defaultUser: 'b79fbf4d-3ef9-4689-8143-76b194e85509',
  },
  manageAsAppRole: 'Exchange.ManageAsApp',
  /** The Admin API v2.0 application permission (learn.microsoft.com/exchange/reference/admin-api-authentication). */
  manageAsAppV2Role: 'Exchange.ManageAsAppV2',
  /** Security & Compliance's token resource (KelvinTegelaar/CIPP-API New-ExoRequest.ps1). */
  complianceAudience: 'https://ps.compliance.protection.outlook.com',
  /**
   * Delegated permission of the Exchange resource for the admin API as the signed-in user
   * ("Exchange.Manage"; docs/fidelity.md §16): what the gateway asks for on-behalf-of a user.
   */
  exchangeDelegatedScope: 'Exchange.Manage',
} as const;

export const SANDBOX_USER_PASSWORD = 'Sandbox-Passw0rd!';

export interface SeedTenant {
  tenantId: string;
  /** Initial domain, e.g. contoso.onmicrosoft.com */
  domain: string;
  /** Additional accepted (vanity) domain used for mail addresses. */
  mailDomain: string;
  displayName: string;
}

export interface SeedAppRole {
  value: string;
  id: string;
  allowedMemberTypes: Array<'Application' | 'User'>;
  description: string;
}

export interface SeedResourceGrant {
  /** Audience the token is issued for (e.g. https://outlook.office365.com or api://exo-gateway). */
  audience: string;
  /** Application permissions (app roles) granted with admin consent. */
  roles: string[];
}

/** A custom Exchange role group: its name and management roles (sandbox/exchange/rbac.ts). */
export interface SeedRoleGroup {
  name: string;
  roles: string[];
}

/**
 * Exchange RBAC of an app's service principal, which needs no Entra role
 * (New-ServicePrincipal, then Add-RoleGroupMember or New-ManagementRoleAssignment -App).
 */
export interface SeedExchangeRbac {
  /** Role groups the service principal is a member of: a built-in one by name, or a custom one. */
  roleGroups?: Array<string | SeedRoleGroup>;
  /** Management roles assigned to the service principal directly. */
  roles?: string[];
}

export interface SeedApp {
  appId: string;
  displayName: string;
  tenantId: string;
  /** Service principal object id in its home tenant. */
  objectId: string;
  /** Names of generated certificates registered as keyCredentials (see seedVaults). */
  certificateNames?: string[];
  /** Names of generated client secrets registered as passwordCredentials (see seedVaults). */
  secretNames?: string[];
  /** Application permissions with admin consent, per resource. */
  grants?: SeedResourceGrant[];
  /** Entra directory role template ids assigned to the service principal (→ `wids`). */
  directoryRoles?: string[];
  /** Exchange role groups / management roles of the service principal (not in the token). */
  exchange?: SeedExchangeRbac;
  /**
   * Delegated permissions the tenant's admin consented to for every user (oauth2PermissionGrant,
   * consentType AllPrincipals), per resource: without one, on-behalf-of fails AADSTS65001.
   */
  delegatedGrants?: Array<{ audience: string; scopes: string[] }>;
  /** For APIs: the identifier URI (audience) and the roles/scopes it exposes. */
  identifierUri?: string;
  appRoles?: SeedAppRole[];
  scopes?: string[];
  /** Public client (SPA) redirect URIs for authorization code + PKCE. */
  redirectUris?: string[];
  publicClient?: boolean;
  /**
   * Service principals of this (multi-tenant) app in other tenants, as admin consent there
   * creates them, with what each tenant granted. Its home tenant's is the app's own fields.
   */
  servicePrincipals?: SeedServicePrincipal[];
  /**
   * Federated identity credentials registered at start (issuer, subject and audience are made
   * from the sandbox's endpoints then): `gatewayManagedIdentity` trusts the gateway's managed identity.
   */
  federatedCredentials?: Array<{ name: string; trusts: 'gatewayManagedIdentity' }>;
}

/** An app's service principal in a tenant other than its home one (admin consent there). */
export interface SeedServicePrincipal {
  tenantId: string;
  objectId: string;
  grants?: SeedResourceGrant[];
  directoryRoles?: string[];
  exchange?: SeedExchangeRbac;
}

export interface SeedManagedIdentity {
  /** Client id the MI endpoint issues tokens for. */
  clientId: string;
  objectId: string;
  tenantId: string;
  displayName: string;
  /** App roles assigned to the identity's service principal (e.g. Exchange.ManageAsApp, assigned with Graph). */
  grants?: SeedResourceGrant[];
  /** Entra directory roles of the identity's service principal (→ `wids`). */
  directoryRoles?: string[];
}

export type MailboxKind = 'UserMailbox' | 'SharedMailbox' | 'None';

export interface SeedUser {
  tenantId: string;
  objectId: string;
  /** Alias (mailNickname); UPN and primary SMTP are alias@mailDomain. */
  alias: string;
  displayName: string;
  givenName?: string;
  surname?: string;
  department?: string;
  jobTitle?: string;
  /** Alias of the manager in the same tenant. */
  manager?: string;
  city?: string;
  accountEnabled: boolean;
  mailbox: MailboxKind;
  /** Group ids (security) the user belongs to — surfaces as `groups` claims for user tokens. */
  securityGroups?: string[];
  /** Entra roles (wids) of a user, beyond the default user role. */
  directoryRoles?: string[];
  /** Exchange role groups the user is a member of (built-in by name, or a custom one): delegated admin API access. */
  exchangeRoleGroups?: Array<string | SeedRoleGroup>;
}

export type JoinRestriction = 'Open' | 'Closed' | 'ApprovalRequired';

export interface SeedGroup {
  tenantId: string;
  objectId: string;
  alias: string;
  displayName: string;
  kind: 'MailUniversalDistributionGroup' | 'MailUniversalSecurityGroup';
  /** Aliases of owners (ManagedBy). */
  owners: string[];
  /** Aliases of members (users or groups). */
  members: string[];
  memberJoinRestriction: JoinRestriction;
  memberDepartRestriction: 'Open' | 'Closed';
}

export interface SeedVaultCertificate {
  name: string;
  /** Which generated certificate (by name in an app's certificateNames). */
  certificate: string;
  contentType: 'application/x-pkcs12' | 'application/x-pem-file';
}

export interface SeedVaultSecret {
  name: string;
  /** Which generated secret: a client secret (by name in an app's secretNames) or a generated key (SandboxSeed.keys). */
  clientSecret: string;
}

export interface SeedVault {
  name: string;
  tenantId: string;
  /** Object ids allowed to read secrets/certificates (Key Vault Secrets User / Certificate User). */
  readers: string[];
  certificates: SeedVaultCertificate[];
  secrets: SeedVaultSecret[];
}

export interface SandboxSeed {
  tenants: SeedTenant[];
  apps: SeedApp[];
  managedIdentity: SeedManagedIdentity;
  users: SeedUser[];
  groups: SeedGroup[];
  vaults: SeedVault[];
  /** Names of 256-bit keys (base64) generated at start, for vault secrets to hold (e.g. the parameter sealing key). */
  keys?: string[];
}

/** The gateway's key for sealing secret cmdlet parameters (PARAMETER_SEALING_KEY_URL): a secret in Contoso's vault. */
export const SANDBOX_SEALING_KEY = { vault: 'contoso-kv', name: 'command-sealing-key' } as const;

/** The gateway API app's client secret for on-behalf-of (DELEGATION_CLIENT_SECRET_URL), in Contoso's vault. */
export const SANDBOX_DELEGATION_SECRET = { vault: 'contoso-kv', name: 'gateway-api-obo-secret' } as const;

const CONTOSO = '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01';
const FABRIKAM = '3c9e7b21-6d4f-4a8b-b2e5-7f1a0d6c5b02';

/** The multi-tenant app that trusts the gateway's managed identity (workload identity federation). */
export const FEDERATED_APP = {
  appId: '1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e09',
  credentialName: 'exo-gateway-managed-identity',
} as const;

export const GATEWAY_API = {
  appId: '5e7d9c1b-3f2a-4d8e-9b6c-0a1f2e3d4c5b',
  identifierUri: 'api://exo-gateway',
} as const;

const MI = {
  clientId: '9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a',
  objectId: 'c4d5e6f7-a8b9-4c0d-9e1f-2a3b4c5d6e7f',
};

let serial = 0;
const uid = (tenant: string, kind: number) =>
  `${tenant.slice(0, 8)}-${(kind * 1000 + ++serial).toString(16).padStart(4, '0')}-4000-8000-${(serial * 7919).toString(16).padStart(12, '0')}`;

function user(tenantId: string, alias: string, displayName: string, extra: Partial<SeedUser> = {}): SeedUser {
  const [givenName, ...rest] = displayName.split(' ');
  return {
    tenantId,
    objectId: uid(tenantId, 1),
    alias,
    displayName,
    givenName,
    surname: rest.join(' ') || undefined,
    accountEnabled: true,
    mailbox: 'UserMailbox',
    ...extra,
  };
}

function group(
  tenantId: string,
  alias: string,
  displayName: string,
  extra: Omit<SeedGroup, 'tenantId' | 'objectId' | 'alias' | 'displayName'>,
): SeedGroup {
  return { tenantId, objectId: uid(tenantId, 2), alias, displayName, ...extra };
}

/** The default seed used by `npm start` and the tests. Pure data; safe to mutate a copy. */
export function defaultSeed(): SandboxSeed {
  serial = 0;
  const contosoUsers: SeedUser[] = [
    user(CONTOSO, 'megan.bowen', 'Megan Bowen', { department: 'Executive', jobTitle: 'CEO', city: 'Seattle' }),
    user(CONTOSO, 'alex.wilber', 'Alex Wilber', {
      department: 'Sales',
      jobTitle: 'Sales Manager',
      manager: 'megan.bowen',
      city: 'Seattle',
    }),
    user(CONTOSO, 'adele.vance', 'Adele Vance', {
      department: 'Sales',
      jobTitle: 'Account Executive',
      manager: 'alex.wilber',
      city: 'Seattle',
    }),
    user(CONTOSO, 'ben.walters', 'Ben Walters', {
      department: 'Engineering',
      jobTitle: 'Engineering Manager',
      manager: 'megan.bowen',
      city: 'Redmond',
      directoryRoles: [WELL_KNOWN.roles.exchangeAdministrator],
      exchangeRoleGroups: ['Organization Management'],
    }),
    user(CONTOSO, 'diego.siciliani', 'Diego Siciliani', {
      department: 'Engineering',
      jobTitle: 'Software Engineer',
      manager: 'ben.walters',
      city: 'Redmond',
    }),
    user(CONTOSO, 'grady.archie', 'Grady Archie', {
      department: 'Engineering',
      jobTitle: 'Site Reliability Engineer',
      manager: 'ben.walters',
      city: 'Redmond',
      directoryRoles: [WELL_KNOWN.roles.helpdeskAdministrator],
      exchangeRoleGroups: ['Help Desk'],
    }),
    user(CONTOSO, 'isaiah.langer', 'Isaiah Langer', {
      department: 'Finance',
      jobTitle: 'Finance Manager',
      manager: 'megan.bowen',
      city: 'Boston',
    }),
    user(CONTOSO, 'johanna.lorenz', 'Johanna Lorenz', {
      department: 'Finance',
      jobTitle: 'Accountant',
      manager: 'isaiah.langer',
      city: 'Boston',
      directoryRoles: [WELL_KNOWN.roles.globalReader],
      exchangeRoleGroups: ['View-Only Organization Management'],
    }),
    user(CONTOSO, 'lee.gu', 'Lee Gu', {
      department: 'IT',
      jobTitle: 'IT Administrator',
      manager: 'megan.bowen',
      city: 'Seattle',
      directoryRoles: [WELL_KNOWN.roles.exchangeRecipientAdministrator],
      exchangeRoleGroups: ['Recipient Management'],
    }),
    user(CONTOSO, 'lidia.holloway', 'Lidia Holloway', {
      department: 'HR',
      jobTitle: 'HR Partner',
      manager: 'megan.bowen',
      city: 'Seattle',
      // A custom role group (New-RoleGroup): HR may set automatic replies and read recipients.
      exchangeRoleGroups: [{ name: 'HR auto-replies', roles: ['User Options', 'View-Only Recipients'] }],
    }),
    user(CONTOSO, 'nestor.wilke', 'Nestor Wilke', {
      department: 'Sales',
      jobTitle: 'Account Executive',
      manager: 'alex.wilber',
      city: 'Chicago',
      accountEnabled: false,
    }),
    user(CONTOSO, 'info', 'Contoso Info', { mailbox: 'SharedMailbox', accountEnabled: false }),
    user(CONTOSO, 'support', 'Contoso Support', { mailbox: 'SharedMailbox', accountEnabled: false }),
  ];
  const fabrikamUsers: SeedUser[] = [
    user(FABRIKAM, 'anna.kowalski', 'Anna Kowalski', {
      department: 'Executive',
      jobTitle: 'Managing Director',
      city: 'Berlin',
    }),
    user(FABRIKAM, 'bruno.costa', 'Bruno Costa', {
      department: 'Marketing',
      jobTitle: 'Marketing Lead',
      manager: 'anna.kowalski',
      city: 'Lisbon',
    }),
    user(FABRIKAM, 'chen.wei', 'Chen Wei', {
      department: 'Marketing',
      jobTitle: 'Content Designer',
      manager: 'bruno.costa',
      city: 'Lisbon',
    }),
    user(FABRIKAM, 'dara.okafor', 'Dara Okafor', {
      department: 'Operations',
      jobTitle: 'Operations Manager',
      manager: 'anna.kowalski',
      city: 'Berlin',
    }),
    user(FABRIKAM, 'elif.yilmaz', 'Elif Yilmaz', {
      department: 'Operations',
      jobTitle: 'Logistics Planner',
      manager: 'dara.okafor',
      city: 'Berlin',
    }),
    user(FABRIKAM, 'farid.haddad', 'Farid Haddad', {
      department: 'Operations',
      jobTitle: 'Warehouse Lead',
      manager: 'dara.okafor',
      city: 'Hamburg',
    }),
    user(FABRIKAM, 'sales', 'Fabrikam Sales', { mailbox: 'SharedMailbox', accountEnabled: false }),
  ];

  const groups: SeedGroup[] = [
    group(CONTOSO, 'sales-team', 'Sales Team', {
      kind: 'MailUniversalDistributionGroup',
      owners: ['alex.wilber'],
      members: ['alex.wilber', 'adele.vance'],
      memberJoinRestriction: 'Open',
      memberDepartRestriction: 'Open',
    }),
    group(CONTOSO, 'engineering', 'Engineering', {
      kind: 'MailUniversalDistributionGroup',
      owners: ['ben.walters'],
      members: ['ben.walters', 'diego.siciliani', 'grady.archie'],
      memberJoinRestriction: 'Closed',
      memberDepartRestriction: 'Closed',
    }),
    group(CONTOSO, 'finance', 'Finance', {
      kind: 'MailUniversalSecurityGroup',
      owners: ['isaiah.langer'],
      members: ['isaiah.langer', 'johanna.lorenz'],
      memberJoinRestriction: 'ApprovalRequired',
      memberDepartRestriction: 'Closed',
    }),
    group(CONTOSO, 'book-club', 'Book Club', {
      kind: 'MailUniversalDistributionGroup',
      owners: ['lidia.holloway'],
      members: ['lidia.holloway'],
      memberJoinRestriction: 'Open',
      memberDepartRestriction: 'Open',
    }),
    group(CONTOSO, 'all-staff', 'All Staff', {
      kind: 'MailUniversalDistributionGroup',
      owners: ['lee.gu'],
      members: [
        'megan.bowen',
        'alex.wilber',
        'adele.vance',
        'ben.walters',
        'diego.siciliani',
        'grady.archie',
        'isaiah.langer',
        'johanna.lorenz',
        'lee.gu',
        'lidia.holloway',
      ],
      memberJoinRestriction: 'Closed',
      memberDepartRestriction: 'Closed',
    }),
    group(FABRIKAM, 'marketing', 'Marketing', {
      kind: 'MailUniversalDistributionGroup',
      owners: ['bruno.costa'],
      members: ['bruno.costa', 'chen.wei'],
      memberJoinRestriction: 'Open',
      memberDepartRestriction: 'Open',
    }),
    group(FABRIKAM, 'operations', 'Operations', {
      kind: 'MailUniversalDistributionGroup',
      owners: ['dara.okafor'],
      members: ['dara.okafor', 'elif.yilmaz', 'farid.haddad'],
      memberJoinRestriction: 'Closed',
      memberDepartRestriction: 'Closed',
    }),
  ];

  const exchangeGrant = (): SeedResourceGrant => ({
    audience: WELL_KNOWN.exchangeAudience,
    roles: [WELL_KNOWN.manageAsAppRole],
  });

  const apps: SeedApp[] = [
    {
      appId: '0b5c8f1e-2a3d-4e6f-8a9b-1c2d3e4f5a01',
      displayName: 'exo-gateway (Contoso)',
      tenantId: CONTOSO,
      objectId: uid(CONTOSO, 3),
      certificateNames: ['contoso-exo', 'contoso-exo-pem'],
      // Contoso's admin also granted the Admin API v2.0 permission, and a compliance role (IPPS).
      grants: [{ ...exchangeGrant(), roles: [WELL_KNOWN.manageAsAppRole, WELL_KNOWN.manageAsAppV2Role] }],
      directoryRoles: [WELL_KNOWN.roles.exchangeAdministrator, WELL_KNOWN.roles.complianceAdministrator],
    },
    {
      appId: '7f3e2d1c-0b9a-4887-a6b5-c4d3e2f1a002',
      displayName: 'exo-gateway (Fabrikam)',
      tenantId: FABRIKAM,
      objectId: uid(FABRIKAM, 3),
      secretNames: ['fabrikam-exo-secret'],
      grants: [exchangeGrant()],
      directoryRoles: [WELL_KNOWN.roles.exchangeRecipientAdministrator],
      // Recipient Management has no -BypassSecurityGroupManagerCheck; the admin added the role
      // that has it (New-ManagementRoleAssignment -App … -Role "Security Group Creation and Membership").
      exchange: { roles: ['Security Group Creation and Membership'] },
    },
    {
      appId: 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c03',
      displayName: 'exo-gateway misconfigured: no Exchange.ManageAsApp',
      tenantId: CONTOSO,
      objectId: uid(CONTOSO, 3),
      secretNames: ['contoso-no-role-secret'],
      grants: [],
      directoryRoles: [WELL_KNOWN.roles.exchangeAdministrator],
    },
    {
      appId: 'b2c3d4e5-f6a7-4b8c-9d0e-1f2a3b4c5d04',
      displayName: 'exo-gateway misconfigured: no Entra role',
      tenantId: CONTOSO,
      objectId: uid(CONTOSO, 3),
      secretNames: ['contoso-no-wids-secret'],
      grants: [exchangeGrant()],
      directoryRoles: [],
    },
    {
      appId: GATEWAY_API.appId,
      displayName: 'exo-gateway API',
      tenantId: CONTOSO,
      objectId: uid(CONTOSO, 3),
      identifierUri: GATEWAY_API.identifierUri,
      appRoles: [
        {
          value: 'Operations.Run',
          id: '11111111-2222-4333-8444-555555555501',
          allowedMemberTypes: ['Application', 'User'],
          description: 'Run named recipient operations',
        },
        {
          value: 'Commands.Run',
          id: '11111111-2222-4333-8444-555555555502',
          allowedMemberTypes: ['Application'],
          description: 'Run raw Exchange cmdlets',
        },
      ],
      scopes: ['user_impersonation'],
      // Its own credential (a client secret in Key Vault) for on-behalf-of, and the tenant
      // admin's consent to the Exchange admin API as the signed-in user.
      secretNames: ['gateway-api-secret'],
      delegatedGrants: [{ audience: WELL_KNOWN.exchangeAudience, scopes: [WELL_KNOWN.exchangeDelegatedScope] }],
    },
    {
      appId: 'c3d4e5f6-a7b8-4c9d-8e0f-1a2b3c4d5e05',
      displayName: 'Power Automate connector (Contoso)',
      tenantId: CONTOSO,
      objectId: uid(CONTOSO, 3),
      secretNames: ['flow-connector-secret'],
      grants: [{ audience: GATEWAY_API.identifierUri, roles: ['Operations.Run'] }],
    },
    {
      appId: 'd4e5f6a7-b8c9-4d0e-9f1a-2b3c4d5e6f06',
      displayName: 'Automation admin (Contoso)',
      tenantId: CONTOSO,
      objectId: uid(CONTOSO, 3),
      secretNames: ['automation-admin-secret'],
      grants: [{ audience: GATEWAY_API.identifierUri, roles: ['Operations.Run', 'Commands.Run'] }],
    },
    {
      appId: 'e5f6a7b8-c9d0-4e1f-8a2b-3c4d5e6f7a07',
      displayName: 'exo-gateway portal',
      tenantId: CONTOSO,
      objectId: uid(CONTOSO, 3),
      publicClient: true,
      // The portal page (interactive sign-in) and its redirect page (silent sign-in in a hidden iframe).
      redirectUris: [
        'http://localhost:7071/portal/',
        'http://localhost:7071/portal',
        'http://localhost/api/portal/',
        'http://localhost:7071/portal/redirect.html',
        'http://localhost/api/portal/redirect.html',
      ],
    },
    {
      // Least privilege without an Entra role: the service principal is in a custom Exchange
      // role group (New-ServicePrincipal + New-RoleGroup + Add-RoleGroupMember).
      appId: 'f6a7b8c9-d0e1-4f2a-8b3c-4d5e6f7a8b08',
      displayName: 'exo-gateway (Exchange role group, no Entra role)',
      tenantId: CONTOSO,
      objectId: uid(CONTOSO, 3),
      secretNames: ['contoso-role-group-secret'],
      grants: [exchangeGrant()],
      directoryRoles: [],
      exchange: {
        roleGroups: [
          {
            name: 'exo-gateway recipients',
            roles: ['Mail Recipients', 'Distribution Groups', 'View-Only Configuration'],
          },
        ],
      },
    },
    {
      // One multi-tenant app, no certificate or secret: it trusts the gateway's managed identity
      // (federated credential) and has a service principal in each customer tenant that consented.
      appId: FEDERATED_APP.appId,
      displayName: 'exo-gateway (multi-tenant, federated credential)',
      tenantId: CONTOSO,
      objectId: uid(CONTOSO, 3),
      grants: [exchangeGrant()],
      directoryRoles: [WELL_KNOWN.roles.exchangeAdministrator],
      federatedCredentials: [{ name: FEDERATED_APP.credentialName, trusts: 'gatewayManagedIdentity' }],
      // Where the adminconsent endpoint may send a customer's admin back: the gateway's onboarding callback.
      redirectUris: ['http://localhost:7071/api/onboarding/callback', 'http://localhost/api/onboarding/callback'],
      servicePrincipals: [
        {
          tenantId: FABRIKAM,
          objectId: uid(FABRIKAM, 3),
          grants: [exchangeGrant()],
          directoryRoles: [WELL_KNOWN.roles.exchangeRecipientAdministrator],
          exchange: { roles: ['Security Group Creation and Membership'] },
        },
      ],
    },
  ];

  const managedIdentity: SeedManagedIdentity = {
    ...MI,
    tenantId: CONTOSO,
    displayName: 'exo-gateway managed identity',
    // Its service principal may run Exchange in its home tenant (credential kind managedIdentity):
    // Exchange.ManageAsApp assigned with Graph, and an Entra role.
    grants: [exchangeGrant()],
    directoryRoles: [WELL_KNOWN.roles.exchangeAdministrator],
  };

  const vaults: SeedVault[] = [
    {
      name: 'contoso-kv',
      tenantId: CONTOSO,
      readers: [MI.objectId],
      certificates: [
        { name: 'exo-contoso', certificate: 'contoso-exo', contentType: 'application/x-pkcs12' },
        { name: 'exo-contoso-pem', certificate: 'contoso-exo-pem', contentType: 'application/x-pem-file' },
      ],
      secrets: [
        { name: 'exo-no-role-secret', clientSecret: 'contoso-no-role-secret' },
        { name: 'exo-no-wids-secret', clientSecret: 'contoso-no-wids-secret' },
        { name: SANDBOX_SEALING_KEY.name, clientSecret: SANDBOX_SEALING_KEY.name },
        { name: 'exo-role-group-secret', clientSecret: 'contoso-role-group-secret' },
        { name: SANDBOX_DELEGATION_SECRET.name, clientSecret: 'gateway-api-secret' },
      ],
    },
    {
      name: 'fabrikam-kv',
      // Vaults live in the gateway operator's (home) tenant, where its managed identity is.
      tenantId: CONTOSO,
      readers: [MI.objectId],
      certificates: [],
      secrets: [{ name: 'exo-fabrikam-secret', clientSecret: 'fabrikam-exo-secret' }],
    },
  ];

  return {
    tenants: [
      { tenantId: CONTOSO, domain: 'contoso.onmicrosoft.com', mailDomain: 'contoso.com', displayName: 'Contoso' },
      { tenantId: FABRIKAM, domain: 'fabrikam.onmicrosoft.com', mailDomain: 'fabrikam.com', displayName: 'Fabrikam' },
    ],
    apps,
    managedIdentity,
    users: [...contosoUsers, ...fabrikamUsers],
    groups,
    vaults,
    keys: [SANDBOX_SEALING_KEY.name],
  };
}

/**
 * A customer tenant that is in no registry and has no service principal of any gateway app: it
 * is onboarded by admin consent (tests of /api/onboarding). Nina is its Global Administrator,
 * Paul a user who may not consent.
 */
export const NORTHWIND = {
  tenantId: 'b7e4c1d2-9a3f-4e5b-8c6d-1f2a3b4c5d03',
  domain: 'northwind.onmicrosoft.com',
  admin: 'nina.admin@northwind.com',
  user: 'paul.user@northwind.com',
} as const;

/** `seed` with Northwind added (its tenant and users); returns the same seed. */
export function withNorthwind(seed: SandboxSeed): SandboxSeed {
  if (seed.tenants.some((t) => t.tenantId === NORTHWIND.tenantId)) return seed;
  seed.tenants.push({
    tenantId: NORTHWIND.tenantId,
    domain: NORTHWIND.domain,
    mailDomain: 'northwind.com',
    displayName: 'Northwind Traders',
  });
  seed.users.push(
    user(NORTHWIND.tenantId, 'nina.admin', 'Nina Admin', {
      department: 'IT',
      jobTitle: 'IT Director',
      directoryRoles: [WELL_KNOWN.roles.globalAdministrator],
    }),
    user(NORTHWIND.tenantId, 'paul.user', 'Paul User', { department: 'Sales', jobTitle: 'Sales Rep' }),
  );
  return seed;
}
