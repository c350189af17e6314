/**
 * A tiny DOM builder: the panel's views are plain elements, rebuilt on each update.
 */
type Child = Node | string | number | null | undefined | false;

/** Create an element with attributes (on* keys become listeners) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, unknown> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) {
      continue;
    }
    if (key.startsWith('on') && typeof value === 'function') {
      element.addEventListener(key.slice(2).toLowerCase(), value as EventListener);
    } else if (key === 'className') {
      element.className = String(value);
    } else if (key === 'checked' || key === 'value') {
      (element as any)[key] = value;
    } else {
      element.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(element, children);
  return element;
}

/** Create an SVG element with attributes and children. */
export function svg(
  tag: string,
  attrs: Record<string, string | number> = {},
  ...children: Child[]
): SVGElement {
  const element = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [key, value] of Object.entries(attrs)) {
    element.setAttribute(key, String(value));
  }
  append(element, children);
  return element;
}

function append(parent: Element, children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) {
      continue;
    }
    parent.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** "1.2 s", "3 min 4 s" from milliseconds. */
export function duration(ms: number | null): string {
  if (ms === null || ms < 0) {
    return '';
  }
  if (ms < 1000) {
    return `${ms} ms`;
  }
  const s = ms / 1000;
  if (s < 60) {
    return `${s.toFixed(1)} s`;
  }
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

/** A start time as the panel shows it: time today, else date and time. */
export function when(ms: number | null): string {
  if (!ms) {
    return '';
  }
  const date = new Date(ms);
  const today = new Date().toDateString() === date.toDateString();
  return today
    ? date.toLocaleTimeString()
    : `${date.toLocaleDateString()} ${date.toLocaleTimeString()}`;
}

/** A metric value with four significant digits. */
export function num(value: number | undefined): string {
  if (value === undefined || value === null) {
    return '';
  }
  return Number.isInteger(value) ? String(value) : value.toPrecision(4);
}

/**
 * "cell 4": a cell named in text, counted from 1 over every cell (markdown too), as
 * JupyterLab's status bar and the server's messages count; the indices the server sends
 * count from 0.
 */
export function cellLabel(index: number): string {
  return `cell ${index + 1}`;
}
