// Building the page without HTML strings: every piece of text (dataset, import or model output) goes
// in through textContent, so `<img onerror=...>` in a rationale stays text. Styles are set through
// CSSOM properties only, which the Content-Security-Policy allows without 'unsafe-inline'.

export type Child = Node | string | number | null | undefined | false;

export interface Props {
  class?: string;
  /** data-testid, the e2e tests' handle. */
  testid?: string;
  text?: string;
  title?: string;
  /** Attributes other than style and event handlers (aria-*, for, type, ...). */
  attrs?: Record<string, string>;
  on?: Partial<{ [K in keyof HTMLElementEventMap]: (e: HTMLElementEventMap[K]) => void }>;
  /** Any other DOM property (value, disabled, checked, hidden, ...). */
  [prop: string]: unknown;
}

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: Props = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined) continue;
    if (k === 'class') el.className = v as string;
    else if (k === 'testid') el.dataset.testid = v as string;
    else if (k === 'text') el.textContent = v as string;
    else if (k === 'attrs') for (const [a, x] of Object.entries(v as Record<string, string>)) setAttr(el, a, x);
    else if (k === 'on') for (const [ev, f] of Object.entries(v as object)) el.addEventListener(ev, f as EventListener);
    else (el as unknown as Record<string, unknown>)[k] = v;
  }
  append(el, ...children);
  return el;
}

function setAttr(el: Element, name: string, value: string): void {
  if (/^on/i.test(name) || name === 'style' || name === 'srcdoc') throw new Error(`h(): attribute "${name}" is not allowed`);
  el.setAttribute(name, value);
}

export function append(el: Node, ...children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces an element's children. */
export function fill(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, ...children);
}

/** Sets textContent only when it changed (cheap to call every frame). */
export function setText(el: Element, text: string): void {
  if (el.textContent !== text) el.textContent = text;
}

/** A labelled form field. */
export function field(label: string, control: HTMLElement, hint?: string): HTMLLabelElement {
  return h('label', { class: 'field' }, h('span', { class: 'field-label', text: label }), control, hint ? h('span', { class: 'field-hint', text: hint }) : null);
}

/** A card: the page's unit of layout. */
export function card(title: string, ...children: Child[]): HTMLElement {
  return h('section', { class: 'card' }, h('h2', { class: 'card-title', text: title }), ...children);
}

/** Runs `f` at most once per animation frame, however often it is asked for. */
export function perFrame(f: () => void): () => void {
  let queued = false;
  return () => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => {
      queued = false;
      f();
    });
  };
}
