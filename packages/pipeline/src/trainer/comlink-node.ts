/**
 * comlink's Node adapter is a UMD module whose `module.exports` is the function: typed through its
 * declaration file, which TypeScript reads as an ES default export. @internal
 */
import type { Endpoint } from 'comlink';
import adapter from 'comlink/dist/umd/node-adapter.js';

type NodeEndpoint = Parameters<typeof import('comlink/dist/umd/node-adapter.js').default>[0];

export const nodeEndpoint = adapter as unknown as (endpoint: NodeEndpoint) => Endpoint;
