// The public surface: what mod.ts exports is documented, asserted in examples, and keeps the
// backend contract's types internal (issue 7).
import assert from "node:assert/strict";

interface JsDoc {
  readonly tags?: readonly { readonly kind: string; readonly doc?: string }[];
}
interface Member {
  readonly name: string;
  readonly kind?: string;
  readonly accessibility?: string;
  readonly jsDoc?: JsDoc;
}
interface Declaration {
  readonly kind: string;
  readonly jsDoc?: JsDoc;
  readonly def?: { readonly constructors?: Member[]; readonly methods?: Member[] };
}
interface DocSymbol {
  readonly name: string;
  readonly declarations: readonly Declaration[];
}

async function publicSymbols(): Promise<DocSymbol[]> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["doc", "--json", new URL("../mod.ts", import.meta.url).pathname],
  }).output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
  const { nodes } = JSON.parse(new TextDecoder().decode(stdout));
  return (Object.values(nodes)[0] as { symbols: DocSymbol[] }).symbols;
}

/** Every function, class, constructor and (non-private) method, with its JSDoc. */
function callables(symbols: readonly DocSymbol[]): [string, JsDoc | undefined][] {
  const found: [string, JsDoc | undefined][] = [];
  for (const { name, declarations } of symbols) {
    for (const { kind, jsDoc, def } of declarations) {
      if (kind === "function") found.push([`${name}()`, jsDoc]);
      if (kind !== "class") continue;
      found.push([`class ${name}`, jsDoc]);
      for (const c of def?.constructors ?? []) found.push([`new ${name}()`, c.jsDoc]);
      for (const m of def?.methods ?? []) {
        if (m.accessibility === "private" || m.kind === "getter" || m.kind === "setter") continue;
        found.push([`${name}.${m.name}()`, m.jsDoc]);
      }
    }
  }
  return found;
}

Deno.test("every exported callable has an @example that asserts its result", async () => {
  const all = callables(await publicSymbols());
  assert.ok(all.length > 100, `expected the whole API, found ${all.length} callables`);
  const missing = all.filter(([, jsDoc]) =>
    !(jsDoc?.tags ?? []).some((tag) =>
      tag.kind === "example" && /import assert from "node:assert\/strict"/.test(tag.doc ?? "")
    )
  ).map(([name]) => name);
  assert.deepEqual(missing, [], "add an @example that imports node:assert/strict and asserts");
});

Deno.test("the backend contract's types are not exported", async () => {
  const names = new Set((await publicSymbols()).map(({ name }) => name));
  for (const internal of ["CellSpec", "CellVariant", "CellParameters", "VariantKind", "Backend"]) {
    assert.ok(!names.has(internal), `${internal} is internal (src/contract.ts), not public API`);
  }
  assert.ok(names.has("BackendName") && names.has("ResolvedBackendName"));
});
