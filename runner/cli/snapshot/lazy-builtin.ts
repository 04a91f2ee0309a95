/**
 * A Node built-in that the startup snapshot's bundle holds as a stand-in, loaded at its first use
 * after the snapshot is deserialized (runner/cli/snapshot/entry.ts). Node 20's snapshot builder
 * cannot serialize `http`, `https` or `tls` once loaded (a native handle: V8 aborts the blob), and
 * dockerode, docker-modem and ws require them at their load, though none uses them before a run.
 *
 * The stand-in answers from the module's key list (read off this very Node by the build) while the
 * snapshot is being built, so that esbuild's ES-module interop (which copies a CommonJS module's
 * keys into getters) and `const { x } = require('http')` of a key this Node lacks see what they
 * would see: any real use of the module at load fails the build, naming it. After deserialization
 * every operation goes to the real module.
 */
import { startupSnapshot } from 'node:v8';

export function lazyBuiltin(name: string, keys: readonly string[], load: () => object): object {
  let real: object | undefined;
  const known = new Set<PropertyKey>(keys);
  const building = () => startupSnapshot.isBuildingSnapshot();
  const module = (): object => {
    if (building()) {
      throw new Error(
        `The run bundle uses node:${name} while its startup snapshot is built. Node 20 cannot snapshot it: use it inside a function (see runner/cli/snapshot/lazy-builtin.ts).`,
      );
    }
    real ??= load();
    return real;
  };
  const stand: object = new Proxy(
    {},
    {
      get: (_, key) => (building() && !known.has(key) ? undefined : Reflect.get(module(), key)),
      has: (_, key) => (building() ? known.has(key) : Reflect.has(module(), key)),
      ownKeys: () => (building() ? [...keys] : Reflect.ownKeys(module())),
      getOwnPropertyDescriptor: (_, key) => {
        if (building())
          return known.has(key) ? { configurable: true, enumerable: true, value: undefined } : undefined;
        const descriptor = Reflect.getOwnPropertyDescriptor(module(), key);
        // A proxy may not report a property its (empty) target lacks as non-configurable.
        return descriptor && { ...descriptor, configurable: true };
      },
      getPrototypeOf: () => (building() ? Object.prototype : Reflect.getPrototypeOf(module())),
      // `h = Object.create(http); h.request = …` (docker-modem) sets on its own object, not ours.
      set: (_, key, value, receiver) =>
        receiver === stand
          ? Reflect.set(module(), key, value)
          : Reflect.defineProperty(receiver as object, key, {
              value,
              writable: true,
              enumerable: true,
              configurable: true,
            }),
      defineProperty: (_, key, descriptor) => Reflect.defineProperty(module(), key, descriptor),
      deleteProperty: (_, key) => Reflect.deleteProperty(module(), key),
    },
  );
  return stand;
}
