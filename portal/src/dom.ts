/** Tiny DOM helpers: elements are built with textContent only (no HTML strings, no inline styles). */
export function $(id: string): HTMLElement {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} is missing`);
  return el;
}

export function input(id: string): HTMLInputElement {
  return $(id) as HTMLInputElement;
}

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') el.className = v;
    else el.setAttribute(k, v);
  }
  for (const child of children) el.append(child);
  return el;
}

export function button(
  label: string,
  attrs: Record<string, string>,
  onClick: (b: HTMLButtonElement) => void,
): HTMLButtonElement {
  const b = h('button', { type: 'button', class: 'btn small', ...attrs }, label);
  b.addEventListener('click', () => onClick(b));
  return b;
}

export function show(el: HTMLElement, visible: boolean): void {
  el.hidden = !visible;
}

export function setError(el: HTMLElement, message: string | undefined): void {
  el.textContent = message ?? '';
  el.hidden = !message;
}
