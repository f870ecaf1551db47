// Flat config: typescript-eslint's recommended rules, plus the architecture's import direction
// (nothing in shared/ imports functions/ or sandbox/).
const tseslint = require('typescript-eslint');

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
      'no-restricted-imports': ['error', { patterns: [{ group: ['**/sandbox/**', '../sandbox/*', '../../sandbox/*'], message: 'Product code must not import the sandbox.' }] }],
    },
  },
  {
    files: ['shared/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        { group: ['**/sandbox/**'], message: 'Product code must not import the sandbox.' },
        { group: ['**/functions/**'], message: 'shared/ must not import functions/.' },
      ] }],
    },
  },
);
