// Lint: neostandard (the Fastify team's ESLint config), TypeScript included,
// no Prettier. `npm run lint`; .ci/run runs it.
import neostandard, { resolveIgnoresFromGitignore } from 'neostandard'
import globals from 'globals'

export default [
  ...neostandard({ ts: true, ignores: [...resolveIgnoresFromGitignore(), 'coverage/**'] }),
  {
    rules: {
      // `void promise` marks a promise deliberately left to run.
      'no-void': ['error', { allowAsStatement: true }],
      // Loop conditions set by a closure (an event, a timer) are not
      // "unmodified": the rule cannot see that.
      'no-unmodified-loop-condition': 'off'
    }
  },
  {
    files: ['**/*.ts'],
    rules: {
      // A TypeBox schema and its static type share one name on purpose;
      // tsc reports real redeclarations.
      '@typescript-eslint/no-redeclare': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { varsIgnorePattern: '^_', argsIgnorePattern: '^_' }]
    }
  },
  {
    // The service's page scripts: each file is one expression that
    // lib/foundry/page-scripts.ts evaluates in a Foundry page.
    files: ['lib/foundry/page/**/*.js'],
    languageOptions: { sourceType: 'script', globals: { ...globals.browser } },
    rules: { 'no-unused-expressions': 'off' }
  },
  {
    // The Foundry stand-in's browser scripts: classic scripts sharing
    // common.js's top-level helpers and Foundry's globals.
    files: ['support/foundry/client/**/*.js'],
    languageOptions: {
      sourceType: 'script',
      globals: {
        ...globals.browser,
        io: 'readonly',
        game: 'writable',
        CONFIG: 'writable',
        Hooks: 'writable',
        ui: 'writable',
        esc: 'readonly',
        route: 'readonly',
        sleep: 'readonly',
        Collection: 'readonly',
        makeUser: 'readonly',
        connectSocket: 'readonly',
        overlay: 'readonly',
        answerRequest: 'readonly'
      }
    },
    rules: {
      'no-redeclare': 'off',
      'no-unused-vars': ['error', { vars: 'local', args: 'none' }]
    }
  }
]
