// Lint config: typescript-eslint's recommended rules over every TypeScript file we own.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/node_modules/**', '**/dist/**', 'coverage/**', 'bench/results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    // The console's page scripts run in the browser, served as they are (no build step).
    files: ['control-plane/src/console/assets/**/*.js'],
    languageOptions: { globals: { ...globals.browser } },
  },
  {
    // The proxy and the control plane share only @lanekeeper/contract (contract/). Reaching
    // into the other side's sources would couple their insides again. Tests that run both
    // sides together live in test/e2e/.
    files: ['control-plane/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '(^|/)proxy/(src|test)(/|$)|^@lanekeeper/proxy',
              message: 'import shared code from @lanekeeper/contract',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['proxy/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '(^|/)control-plane/(src|test)(/|$)|^@lanekeeper/control-plane',
              message: 'import shared code from @lanekeeper/contract',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['contract/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '(^|/)(proxy|control-plane)/|^@lanekeeper/(proxy|control-plane)',
              message: 'the contract depends on neither side',
            },
          ],
        },
      ],
    },
  },
);
