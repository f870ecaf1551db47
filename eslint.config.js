// Flat config: typescript-eslint's recommended rules, plus the architecture's import direction
// (nothing in shared/ imports functions/ or sandbox/; the domain imports no HTTP).
const tseslint = require('typescript-eslint');

// Product code talks to the OpenTelemetry API; only shared/observability/azure-monitor.ts starts an SDK.
const OTEL_SDK = {
  group: [
    '@azure/monitor-opentelemetry*',
    '@opentelemetry/sdk-*',
    '@opentelemetry/exporter-*',
    '@opentelemetry/instrumentation*',
  ],
  message:
    'Use @opentelemetry/api (shared/observability/telemetry.ts); only shared/observability/azure-monitor.ts starts the SDK.',
};

// The domain knows nothing of HTTP: it throws GatewayError (shared/core/errors.ts) and takes a
// plain Caller (shared/core/caller.ts); shared/http and functions/ adapt it to requests and answers.
const DOMAIN = [
  'commands',
  'policy',
  'events',
  'selfservice',
  'exchange',
  'credentials',
  'config',
  'core',
  'operations',
  'tenants',
  'delegation',
].map((folder) => `shared/${folder}/**/*.ts`);
const NO_HTTP = [
  // Up the tree to shared/http (shared/exchange has an http.ts of its own: './http' is fine).
  {
    regex: '^(\\.\\./)+(shared/)?http(/|$)',
    message:
      'Domain code must not import shared/http: throw a GatewayError (shared/core/errors.ts); shared/http maps it to an answer.',
  },
  {
    group: ['@azure/functions', '@azure/functions/*'],
    message: 'Domain code must not depend on the Functions runtime: the adapters in functions/ and shared/http do.',
  },
];

module.exports = tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', 'coverage/**', '.sandbox/**', 'docs/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-require-imports': 'off',
    },
  },
  {
    files: ['shared/**/*.ts', 'functions/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/sandbox/**', '../sandbox/*', '../../sandbox/*'],
              message: 'Product code must not import the sandbox.',
            },
            OTEL_SDK,
          ],
        },
      ],
    },
  },
  {
    files: ['shared/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['**/sandbox/**'], message: 'Product code must not import the sandbox.' },
            { group: ['**/functions/**'], message: 'shared/ must not import functions/.' },
            OTEL_SDK,
          ],
        },
      ],
    },
  },
  {
    // A later no-restricted-imports replaces the one above for these files: it repeats its patterns.
    files: DOMAIN,
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['**/sandbox/**'], message: 'Product code must not import the sandbox.' },
            { group: ['**/functions/**'], message: 'shared/ must not import functions/.' },
            OTEL_SDK,
            ...NO_HTTP,
          ],
        },
      ],
    },
  },
  {
    // The one place that starts the exporter.
    files: ['shared/observability/azure-monitor.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['**/sandbox/**'], message: 'Product code must not import the sandbox.' },
            { group: ['**/functions/**'], message: 'shared/ must not import functions/.' },
          ],
        },
      ],
    },
  },
);
