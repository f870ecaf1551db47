// Flat config: typescript-eslint's recommended rules, plus the architecture's import direction
// (nothing in shared/ imports functions/ or sandbox/).
const tseslint = require('typescript-eslint');

// Product code talks to the OpenTelemetry API; only shared/observability/azure-monitor.ts starts an SDK.
const OTEL_SDK = { group: ['@azure/monitor-opentelemetry*', '@opentelemetry/sdk-*', '@opentelemetry/exporter-*', '@opentelemetry/instrumentation*'], message: 'Use @opentelemetry/api (shared/observability/telemetry.ts); only shared/observability/azure-monitor.ts starts the SDK.' };

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
      'no-restricted-imports': ['error', { patterns: [{ group: ['**/sandbox/**', '../sandbox/*', '../../sandbox/*'], message: 'Product code must not import the sandbox.' }, OTEL_SDK] }],
    },
  },
  {
    files: ['shared/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        { group: ['**/sandbox/**'], message: 'Product code must not import the sandbox.' },
        { group: ['**/functions/**'], message: 'shared/ must not import functions/.' },
        OTEL_SDK,
      ] }],
    },
  },
  {
    // The one place that starts the exporter.
    files: ['shared/observability/azure-monitor.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        { group: ['**/sandbox/**'], message: 'Product code must not import the sandbox.' },
        { group: ['**/functions/**'], message: 'shared/ must not import functions/.' },
      ] }],
    },
  },
);
