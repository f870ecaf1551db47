/**
 * Signs and verifies the sandbox's access and ID tokens: RS256 JWTs with a `kid` published in
 * the JWKS, shaped like Entra ID's (v1 access tokens for app-only resource tokens, v2 for the
 * gateway API). Key Vault and Exchange emulators verify with the same keys, as the real
 * services verify Entra's signature.
 */
import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, jwtVerify, SignJWT, errors, type JWK, type KeyLike } from 'jose';

export interface AccessTokenClaims {
  aud: string;
  iss: string;
  tid: string;
  oid: string;
  sub: string;
  /** v1 tokens: client id of the caller. */
  appid?: string;
  /** v2 tokens: client id of the caller. */
  azp?: string;
  /** 'app' for app-only tokens, 'user' for delegated ones. */
  idtyp?: 'app' | 'user';
  roles?: string[];
  wids?: string[];
  scp?: string;
  upn?: string;
  unique_name?: string;
  name?: string;
  groups?: string[];
  ver: '1.0' | '2.0';
  iat: number;
  nbf: number;
  exp: number;
  [claim: string]: unknown;
}

export type TokenProblem = 'malformed' | 'signature' | 'expired' | 'notYetValid';

export class TokenVerificationError extends Error {
  constructor(
    readonly problem: TokenProblem,
    message: string,
  ) {
    super(message);
    this.name = 'TokenVerificationError';
  }
}

export interface TokenServiceOptions {
  /** Access token lifetime in seconds (default 3599, like Entra's ~1 h). */
  lifetimeSeconds?: number;
}

export class TokenService {
  private privateKey!: KeyLike;
  private publicKey!: KeyLike;
  private jwk!: JWK;
  readonly kid = randomUUID().replace(/-/g, '').slice(0, 27);
  lifetimeSeconds: number;

  private constructor(options: TokenServiceOptions) {
    this.lifetimeSeconds = options.lifetimeSeconds ?? 3599;
  }

  static async create(options: TokenServiceOptions = {}): Promise<TokenService> {
    const service = new TokenService(options);
    const { privateKey, publicKey } = await generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
    service.privateKey = privateKey;
    service.publicKey = publicKey;
    service.jwk = { ...(await exportJWK(publicKey)), kid: service.kid, use: 'sig', kty: 'RSA', alg: 'RS256' };
    return service;
  }

  /** Public keys as the JWKS endpoint publishes them. */
  jwks(): { keys: JWK[] } {
    return { keys: [this.jwk] };
  }

  /**
   * Signs a token. `claims` must carry aud/iss/tid/oid/sub; iat/nbf/exp/ver are filled in
   * (a `lifetimeSeconds` override lets tests ask for short-lived tokens).
   */
  async sign(
    claims: Omit<AccessTokenClaims, 'iat' | 'nbf' | 'exp' | 'ver'> & Partial<Pick<AccessTokenClaims, 'ver'>>,
    lifetimeSeconds = this.lifetimeSeconds,
  ): Promise<{ token: string; expiresIn: number; claims: AccessTokenClaims }> {
    const now = Math.floor(Date.now() / 1000);
    const full: AccessTokenClaims = {
      ver: '1.0',
      ...claims,
      iat: now,
      nbf: now,
      exp: now + lifetimeSeconds,
    } as AccessTokenClaims;
    const token = await new SignJWT({ ...full })
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: this.kid })
      .sign(this.privateKey);
    return { token, expiresIn: lifetimeSeconds, claims: full };
  }

  /**
   * Signs exactly these claims with the issuer's key (nothing filled in): forgery tests use it
   * for tokens Entra ID would never issue, e.g. without `exp` or issued in the future.
   */
  async signClaims(claims: Record<string, unknown>): Promise<string> {
    return new SignJWT({ ...claims })
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: this.kid })
      .sign(this.privateKey);
  }

  /** Verifies signature and lifetime; audience/issuer/role checks are the caller's job. */
  async verify(token: string): Promise<AccessTokenClaims> {
    try {
      const { payload } = await jwtVerify(token, this.publicKey, { algorithms: ['RS256'], clockTolerance: 0 });
      return payload as AccessTokenClaims;
    } catch (error) {
      if (error instanceof errors.JWTExpired) throw new TokenVerificationError('expired', 'The token is expired.');
      if (error instanceof errors.JWTClaimValidationFailed && error.claim === 'nbf')
        throw new TokenVerificationError('notYetValid', 'The token is not yet valid.');
      if (error instanceof errors.JWSSignatureVerificationFailed)
        throw new TokenVerificationError('signature', 'The token signature is invalid.');
      throw new TokenVerificationError('malformed', 'The token is malformed.');
    }
  }
}
