/**
 * Detecting the end of a response, exactly once.
 *
 * `'close'` is the end: Node emits it exactly once for every
 * `http.ServerResponse` and `http2.Http2ServerResponse`, one tick after
 * `'finish'` for a response that was sent (keep-alive included), alone for
 * one whose client went away, and once for an HTTP/2 stream the client
 * cancelled (which also gives `'finish'` with `writableEnded` false). So one
 * `'close'` listener needs no second listener and no flag on the response:
 * measured under Express, the first-of-`'finish'`-or-`'close'` form with a
 * flag cost about a fifth more.
 *
 * But `'close'` may already be gone: a client that aborted while an earlier
 * asynchronous middleware ran closes the response before anyone listens, and
 * a listener added then never fires (issue 13: `in_flight` stuck at 1 for
 * the life of the process). jshttp/on-finished asks first too (`isFinished`).
 * Ours asks `res.destroyed`, which node:http sets right before it emits
 * `'close'` (for an answered response and an aborted one alike) and when
 * `destroy()` is called, whose `'close'` is then on its way: either way the
 * response ends now. It is an own field, where `res.closed` is a getter on
 * the prototype: under Express, which swaps the prototype of every response,
 * a getter costs a lookup miss per request. HTTP/2's compatibility response
 * has neither; its stream's `closed` is asked instead. A response that is
 * ended but not yet closed still gets its `'close'`, so listening stays
 * right for it.
 */

/** The part of `http.ServerResponse` / `http2.Http2ServerResponse` this library uses. */
export interface ResponseLike {
  on(event: 'close', listener: () => void): unknown;
  statusCode: number;
  /** `http.ServerResponse`: true once `'close'` has been emitted or `destroy()` called. */
  readonly destroyed?: boolean;
  /** `http2.Http2ServerResponse`: its stream, closed once the exchange is over. */
  readonly stream?: { readonly closed?: boolean };
}

/**
 * Calls `listener` exactly once, when `res` ends. When `res` has already
 * closed, the listener is called on the next microtask: never inside this
 * call (the caller finishes its own set-up first, as with any event), yet
 * before any I/O or timer runs. The check costs one property read (two for
 * HTTP/2).
 */
export function onResponseEnd(res: ResponseLike, listener: () => void): void {
  const destroyed = res.destroyed;
  if (destroyed === true || (destroyed === undefined && res.stream?.closed === true)) queueMicrotask(listener);
  else res.on('close', listener);
}
