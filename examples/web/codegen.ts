import type { CodegenConfig } from '@graphql-codegen/cli';

// Types for every operation in src/, from the server's exported schema.
const config: CodegenConfig = {
  schema: '../../schema.graphql',
  documents: ['src/**/*.tsx', 'src/**/*.ts', '!src/gql/**'],
  ignoreNoDocuments: true,
  generates: {
    './src/gql/': {
      preset: 'client',
      config: {
        // Decimal is a string on the wire (exact; parse it only to draw), dates are ISO strings.
        scalars: { Decimal: 'string', Date: 'string', DateTime: 'string', JSON: 'unknown' },
        enumsAsTypes: true,
        useTypeImports: true,
      },
    },
  },
};
export default config;
