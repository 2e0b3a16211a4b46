/** A consumer of `wsgi-status/koa` (Koa 2 and 3), as its types see it. */
import Koa from 'koa';
import wsgiStatus, { type KoaContextLike, type WsgiStatusKoaMiddleware } from '../../src/adapters/koa.js';

const middleware: WsgiStatusKoaMiddleware = wsgiStatus('/dev/shm/app-status.json', { interval: 500 });
new Koa().use(middleware);

// An app with its own state and context types takes it too.
interface State {
  user?: string;
}
interface Custom {
  requestId: string;
}
const typed = new Koa<State, Custom>();
typed.use(wsgiStatus('/dev/shm/app-status.json'));
typed.use(async (ctx, next) => {
  ctx.state.user = ctx.requestId;
  await next();
});

// The context it needs is structural: any { req, res } from node:http fits.
const context: KoaContextLike = { req: { method: 'GET', url: '/' }, res: { statusCode: 200, on: () => undefined } };
void middleware(context, async () => undefined);
void middleware.monitor.tick();
const closed: Promise<void> = middleware.close();
void closed;

// @ts-expect-error mode is a number (0o644), not a string
wsgiStatus('/dev/shm/app-status.json', { mode: '644' });
// @ts-expect-error a context needs req and res
void middleware({}, async () => undefined);
// @ts-expect-error next must return a promise
void middleware(context, () => undefined);
