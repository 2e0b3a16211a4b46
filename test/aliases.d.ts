/**
 * The older majors the matrix runs, installed under aliases (package.json
 * devDependencies `express4`, `koa2`). Their @types are the current majors';
 * the tests cast each to the current one's type, so these only name them.
 * fastify4 ships its own types.
 */
declare module 'express4' {
  import express from 'express';
  export default express;
}
declare module 'koa2' {
  import Koa from 'koa';
  export default Koa;
}
