/**
 * Every libpcap handle made through `cap` stays referenced for the life of the process.
 *
 * `cap`'s native handle (class Pcap in its binding.cc) must never be garbage collected: once
 * closed it drops its own reference (Unref), and when the collector then frees it, its
 * destructor runs from inside V8's weak callback and emits the async resource's destroy hook
 * there, which kills node with SIGSEGV (backtrace: node::AsyncWrap::EmitDestroy from
 * Pcap::~Pcap, from GlobalHandles::InvokeFirstPassWeakCallbacks; node 20, cap 0.2.1). The
 * close itself is fine; only the collection crashes. So `fingerprint` died with exit 139 now
 * and then while printing its table (the scan's handles, closed, were collected), `fingerprint
 * --passive` on Ctrl-C, and a gateway at the first collection after reopening its captures.
 *
 * What a kept handle costs after close: the small native object and its JS wrapper (the
 * libpcap handle and the capture buffer are released by close). Handles are opened once per
 * scan interface, per passive capture and per gateway port and filter change.
 */

const kept = new Set<object>()

/** Keep `handle` referenced for the life of the process (it must never be collected); returns it. */
export function keepCapHandle<T extends object>(handle: T): T {
  kept.add(handle)
  return handle
}
