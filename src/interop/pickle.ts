/**
 * A restricted unpickler: a data interpreter for the subset of Python's pickle format (protocols
 * 2 to 5) that `torch.save` writes for a `state_dict`. It never executes anything. Every opcode
 * outside a whitelist, and every global the caller does not provide, is refused with an error
 * naming it at the moment the interpreter meets it, before any later opcode is read.
 *
 * @module
 */

/** The error every refused or malformed pickle produces. */
export class PickleError extends Error {
  /** Makes the error; `message` says what was refused or what is malformed. */
  constructor(message: string) {
    super(message);
    this.name = "PickleError";
  }
}

/**
 * A Python callable the caller allows: the only things `REDUCE` may call. `call` receives the
 * argument tuple as an array and returns the value (it is TypeScript, never Python).
 */
export interface PickleCallable {
  /** `module.name`, for error messages. */
  readonly qualifiedName: string;
  /** Computes the result of calling the global with `args`. */
  call(args: readonly unknown[]): unknown;
}

/** A Python dict (and `collections.OrderedDict`): keys in insertion order. */
export type PickleDict = Map<unknown, unknown>;

/** What the interpreter needs from its caller. */
export interface UnpickleOptions {
  /** The allowed globals, by `"module name"` (as in Python's `module.name`). */
  readonly globals: ReadonlyMap<string, PickleCallable>;
  /** Resolves a persistent id (`BINPERSID`), as `Unpickler.persistent_load` does. */
  persistentLoad(pid: unknown): unknown;
}

// Opcodes torch.save emits (pickle protocol 2, and 4/5 framing and short forms). Any other opcode,
// in particular INST, OBJ, NEWOBJ and EXT*, which can build arbitrary objects, is refused.
const OPCODE_NAMES: Record<number, string> = {
  0x80: "PROTO",
  0x95: "FRAME",
  0x2e: "STOP",
  0x28: "MARK",
  0x7d: "EMPTY_DICT",
  0x5d: "EMPTY_LIST",
  0x29: "EMPTY_TUPLE",
  0x74: "TUPLE",
  0x85: "TUPLE1",
  0x86: "TUPLE2",
  0x87: "TUPLE3",
  0x64: "DICT",
  0x6c: "LIST",
  0x61: "APPEND",
  0x65: "APPENDS",
  0x73: "SETITEM",
  0x75: "SETITEMS",
  0x4e: "NONE",
  0x88: "NEWTRUE",
  0x89: "NEWFALSE",
  0x4b: "BININT1",
  0x4d: "BININT2",
  0x4a: "BININT",
  0x8a: "LONG1",
  0x47: "BINFLOAT",
  0x58: "BINUNICODE",
  0x8c: "SHORT_BINUNICODE",
  0x8d: "BINUNICODE8",
  0x71: "BINPUT",
  0x72: "LONG_BINPUT",
  0x94: "MEMOIZE",
  0x68: "BINGET",
  0x6a: "LONG_BINGET",
  0x63: "GLOBAL",
  0x93: "STACK_GLOBAL",
  0x52: "REDUCE",
  0x62: "BUILD",
  0x51: "BINPERSID",
};

// Names of the opcodes refused, so the error can name what the file asked for.
const REFUSED_NAMES: Record<number, string> = {
  0x69: "INST",
  0x6f: "OBJ",
  0x81: "NEWOBJ",
  0x92: "NEWOBJ_EX",
  0x82: "EXT1",
  0x83: "EXT2",
  0x84: "EXT4",
  0x50: "PERSID",
  0x49: "INT",
  0x4c: "LONG",
  0x46: "FLOAT",
  0x53: "STRING",
  0x54: "BINSTRING",
  0x55: "SHORT_BINSTRING",
  0x56: "UNICODE",
  0x42: "BINBYTES",
  0x43: "SHORT_BINBYTES",
  0x8e: "BINBYTES8",
  0x96: "BYTEARRAY8",
  0x97: "NEXT_BUFFER",
  0x98: "READONLY_BUFFER",
  0x8b: "LONG4",
  0x8f: "EMPTY_SET",
  0x90: "ADDITEMS",
  0x91: "FROZENSET",
  0x67: "GET",
  0x70: "PUT",
  0x30: "POP",
  0x31: "POP_MARK",
  0x32: "DUP",
};

const decoder = new TextDecoder("utf-8", { fatal: true });

/** A value read from a pickle and the offset just past the pickle's STOP. */
export interface Unpickled {
  /** The pickled value. */
  readonly value: unknown;
  /** Where the next byte after the pickle is (files may hold pickles back to back). */
  readonly end: number;
}

/**
 * Interprets the pickle that starts at `start` in `bytes`. Python values map to: `None` →
 * `null`, bool, int and float → `number` (ints beyond 2^53 are refused), str → `string`, tuple
 * and list → array, dict → `Map`, an allowed global's call → what its `call` returns, a
 * persistent id → what `persistentLoad` returns.
 *
 * @throws {PickleError} On a refused opcode or global, or a malformed or truncated pickle.
 *
 * @example Read a pickled tuple (`pickle.dumps((1, "a"), protocol=2)`)
 * ```ts
 * import { unpickle } from "./pickle.ts";
 * const bytes = new Uint8Array([0x80, 2, 0x4b, 1, 0x58, 1, 0, 0, 0, 0x61, 0x86, 0x2e]);
 * const { value } = unpickle(bytes, 0, { globals: new Map(), persistentLoad: () => null });
 * // value is [1, "a"]
 * ```
 */
export function unpickle(bytes: Uint8Array, start: number, options: UnpickleOptions): Unpickled {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();
  let position = start;

  const take = (count: number, what: string): number => {
    if (count > bytes.length - position) {
      throw new PickleError(
        `truncated pickle: ${what} at byte ${position} needs ${count} bytes, ${
          bytes.length - position
        } left`,
      );
    }
    const start = position;
    position += count;
    return start;
  };
  const pop = (opcode: string): unknown => {
    if (stack.length === 0 || stack.length <= (marks.at(-1) ?? -1)) {
      throw new PickleError(`malformed pickle: ${opcode} at byte ${position} on an empty stack`);
    }
    return stack.pop();
  };
  const popMark = (opcode: string): unknown[] => {
    const mark = marks.pop();
    if (mark === undefined) {
      throw new PickleError(`malformed pickle: ${opcode} at byte ${position} without a MARK`);
    }
    return stack.splice(mark);
  };
  const top = (opcode: string): unknown => {
    const value = pop(opcode);
    stack.push(value);
    return value;
  };
  const text = (length: number, what: string): string => {
    const start = take(length, what);
    try {
      return decoder.decode(bytes.subarray(start, start + length));
    } catch {
      throw new PickleError(`malformed pickle: ${what} at byte ${start} is not valid UTF-8`);
    }
  };
  const line = (what: string): string => {
    const end = bytes.indexOf(0x0a, position);
    if (end < 0) throw new PickleError(`truncated pickle: ${what} at byte ${position} has no end`);
    return text(end - position + 1, what).slice(0, -1);
  };
  const findGlobal = (module: string, name: string): PickleCallable => {
    const callable = options.globals.get(`${module} ${name}`);
    if (callable === undefined) {
      // Escaped and cut: a corrupt file can put any bytes here.
      const shown = JSON.stringify(`${module}.${name}`).slice(1, -1).slice(0, 100);
      throw new PickleError(
        `refused global ${shown}: a state_dict holds only tensors, so this file asks ` +
          `for code that is never run here; it is not a plain torch.save(model.state_dict()) file`,
      );
    }
    return callable;
  };
  const memoKey = (key: number, opcode: string): unknown => {
    if (!memo.has(key)) {
      throw new PickleError(`malformed pickle: ${opcode} of memo entry ${key} that was never put`);
    }
    return memo.get(key);
  };
  const setItems = (target: unknown, items: unknown[], opcode: string): void => {
    if (!(target instanceof Map)) {
      throw new PickleError(`malformed pickle: ${opcode} on ${kindOf(target)}, not a dict`);
    }
    if (items.length % 2 !== 0) {
      throw new PickleError(`malformed pickle: ${opcode} with an odd number of items`);
    }
    for (let i = 0; i < items.length; i += 2) target.set(items[i], items[i + 1]);
  };
  const append = (target: unknown, items: unknown[], opcode: string): void => {
    if (!Array.isArray(target)) {
      throw new PickleError(`malformed pickle: ${opcode} on ${kindOf(target)}, not a list`);
    }
    for (const item of items) target.push(item);
  };

  while (true) {
    const at = take(1, "opcode");
    const code = bytes[at];
    const name = OPCODE_NAMES[code];
    if (name === undefined) {
      const refused = REFUSED_NAMES[code];
      throw new PickleError(
        refused === undefined
          ? `malformed pickle: unknown opcode 0x${code.toString(16)} at byte ${at}`
          : `refused pickle opcode ${refused} at byte ${at}: torch.save never writes it for a state_dict`,
      );
    }
    switch (name) {
      case "PROTO":
        take(1, name);
        break;
      case "FRAME":
        take(8, name); // frames only group opcodes; the bytes are read in place
        break;
      case "STOP":
        if (stack.length !== 1 || marks.length !== 0) {
          throw new PickleError(
            `malformed pickle: STOP at byte ${at} with ${stack.length} values on the stack`,
          );
        }
        return { value: stack[0], end: position };
      case "MARK":
        marks.push(stack.length);
        break;
      case "EMPTY_DICT":
        stack.push(new Map());
        break;
      case "EMPTY_LIST":
      case "EMPTY_TUPLE":
        stack.push([]);
        break;
      case "TUPLE":
      case "LIST":
        stack.push(popMark(name));
        break;
      case "TUPLE1":
      case "TUPLE2":
      case "TUPLE3": {
        const count = code - 0x84;
        const items = Array.from({ length: count }, () => pop(name)).reverse();
        stack.push(items);
        break;
      }
      case "DICT": {
        const dict = new Map();
        setItems(dict, popMark(name), name);
        stack.push(dict);
        break;
      }
      case "APPEND": {
        const value = pop(name);
        append(top(name), [value], name);
        break;
      }
      case "APPENDS": {
        const items = popMark(name);
        append(top(name), items, name);
        break;
      }
      case "SETITEM": {
        const value = pop(name);
        const key = pop(name);
        setItems(top(name), [key, value], name);
        break;
      }
      case "SETITEMS": {
        const items = popMark(name);
        setItems(top(name), items, name);
        break;
      }
      case "NONE":
        stack.push(null);
        break;
      case "NEWTRUE":
        stack.push(true);
        break;
      case "NEWFALSE":
        stack.push(false);
        break;
      case "BININT1":
        stack.push(bytes[take(1, name)]);
        break;
      case "BININT2":
        stack.push(view.getUint16(take(2, name), true));
        break;
      case "BININT":
        stack.push(view.getInt32(take(4, name), true));
        break;
      case "LONG1": {
        const length = bytes[take(1, name)];
        stack.push(readLong(bytes, take(length, name), length));
        break;
      }
      case "BINFLOAT":
        stack.push(view.getFloat64(take(8, name), false));
        break;
      case "BINUNICODE":
        stack.push(text(view.getUint32(take(4, name), true), name));
        break;
      case "SHORT_BINUNICODE":
        stack.push(text(bytes[take(1, name)], name));
        break;
      case "BINUNICODE8": {
        const length = view.getBigUint64(take(8, name), true);
        if (length > BigInt(bytes.length)) take(bytes.length + 1, name);
        stack.push(text(Number(length), name));
        break;
      }
      case "BINPUT":
        memo.set(bytes[take(1, name)], top(name));
        break;
      case "LONG_BINPUT":
        memo.set(view.getUint32(take(4, name), true), top(name));
        break;
      case "MEMOIZE":
        memo.set(memo.size, top(name));
        break;
      case "BINGET":
        stack.push(memoKey(bytes[take(1, name)], name));
        break;
      case "LONG_BINGET":
        stack.push(memoKey(view.getUint32(take(4, name), true), name));
        break;
      case "GLOBAL": {
        const module = line("GLOBAL module");
        stack.push(findGlobal(module, line("GLOBAL name")));
        break;
      }
      case "STACK_GLOBAL": {
        const globalName = pop(name);
        const module = pop(name);
        if (typeof module !== "string" || typeof globalName !== "string") {
          throw new PickleError(`malformed pickle: STACK_GLOBAL at byte ${at} without two strings`);
        }
        stack.push(findGlobal(module, globalName));
        break;
      }
      case "REDUCE": {
        const args = pop(name);
        const callable = pop(name);
        if (!isCallable(callable)) {
          throw new PickleError(`malformed pickle: REDUCE at byte ${at} on ${kindOf(callable)}`);
        }
        if (!Array.isArray(args)) {
          throw new PickleError(
            `malformed pickle: REDUCE of ${callable.qualifiedName} with ${kindOf(args)} arguments`,
          );
        }
        stack.push(callable.call(args));
        break;
      }
      case "BUILD": {
        // torch sets the state_dict's `_metadata` (per-module versions) this way; it is dropped.
        const state = pop(name);
        const target = top(name);
        if (!(target instanceof Map) || !(state === null || state instanceof Map)) {
          throw new PickleError(
            `refused pickle BUILD at byte ${at} of ${kindOf(target)} with ${kindOf(state)}: ` +
              `only a dict's metadata may be set`,
          );
        }
        break;
      }
      case "BINPERSID":
        stack.push(options.persistentLoad(pop(name)));
        break;
    }
  }
}

function readLong(bytes: Uint8Array, start: number, length: number): number {
  let value = 0n;
  for (let i = length - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[start + i]);
  if (length > 0 && bytes[start + length - 1] >= 0x80) value -= 1n << BigInt(8 * length);
  if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw new PickleError(`refused integer ${value} at byte ${start}: beyond 2^53`);
  }
  return Number(value);
}

function isCallable(value: unknown): value is PickleCallable {
  return typeof value === "object" && value !== null && "call" in value &&
    "qualifiedName" in value;
}

/** Names the Python kind of an unpickled value, for error messages. */
export function kindOf(value: unknown): string {
  if (value === null) return "None";
  if (Array.isArray(value)) return "a tuple or list";
  if (value instanceof Map) return "a dict";
  if (isCallable(value)) return `the global ${value.qualifiedName}`;
  if (typeof value === "string") return "a str";
  if (typeof value === "number") return "a number";
  if (typeof value === "boolean") return "a bool";
  return "an object";
}
