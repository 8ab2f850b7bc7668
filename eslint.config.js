import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/node_modules/**', '**/gen/**', 'packages/web/dist/**', 'bench/libsignal/node_modules/**', '.tmp/**', 'data/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
      'no-restricted-imports': 'off',
    },
  },
  {
    // The protocol package is sans-I/O and runs in browsers: no node: built-ins.
    files: ['packages/protocol/src/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: ['fs', 'path', 'crypto', 'os', 'net', 'http', 'https', 'child_process', 'worker_threads'],
          patterns: [{ group: ['node:*'], message: 'packages/protocol must not import Node built-ins (sans-I/O, runs in browsers).' }],
        },
      ],
    },
  },
);
