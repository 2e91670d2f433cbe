// Just enough of a DOM for app.js's renderers and its page controller, in
// node: elements keep their children, attributes and listeners; innerHTML and
// friends throw, so a renderer that reached for them fails the test.

export class TextNode {
  constructor(text) { this.nodeType = 3; this.data = String(text); this.parentNode = null; }
  get textContent() { return this.data; }
}

export class Element {
  constructor(doc, tag) {
    this.ownerDocument = doc;
    this.tagName = tag.toUpperCase();
    this.nodeType = 1;
    this.children = [];
    this.attributes = new Map();
    this.listeners = new Map();
    this.parentNode = null;
    this.className = "";
    this.value = "";
    this.hidden = false;
    this.readOnly = false;
    this.open = true;
    this.scrollTop = 0;
    this.scrollHeight = 0;
  }
  appendChild(child) {
    if (child.parentNode) child.parentNode.removeChild(child);
    child.parentNode = this;
    this.children.push(child);
    return child;
  }
  removeChild(child) {
    this.children = this.children.filter((c) => c !== child);
    child.parentNode = null;
    return child;
  }
  replaceChildren(...nodes) {
    for (const c of this.children) c.parentNode = null;
    this.children = [];
    for (const n of nodes) this.appendChild(n);
  }
  get textContent() { return this.children.map((c) => c.textContent).join(""); }
  set textContent(text) { this.replaceChildren(new TextNode(text)); }
  set innerHTML(_) { throw new Error("innerHTML used"); }
  set outerHTML(_) { throw new Error("outerHTML used"); }
  insertAdjacentHTML() { throw new Error("insertAdjacentHTML used"); }
  setAttribute(name, value) { this.attributes.set(name, String(value)); }
  getAttribute(name) { return this.attributes.has(name) ? this.attributes.get(name) : null; }
  removeAttribute(name) { this.attributes.delete(name); }
  get classList() {
    const names = this.className.split(/\s+/).filter(Boolean);
    return { contains: (n) => names.includes(n) };
  }
  closest(selector) {
    const cls = selector.replace(/^\./, "");
    for (let n = this; n && n.nodeType === 1; n = n.parentNode) {
      if (n.classList.contains(cls)) return n;
    }
    return null;
  }
  addEventListener(type, fn) {
    if (!this.listeners.has(type)) this.listeners.set(type, []);
    this.listeners.get(type).push(fn);
  }
  dispatch(type, extra) {
    const event = { type, target: this, defaultPrevented: false, ...extra };
    event.preventDefault = () => { event.defaultPrevented = true; };
    for (let n = this; n; n = n.parentNode) {
      for (const fn of (n.listeners && n.listeners.get(type)) || []) fn(event);
    }
    return event;
  }
  click() { return this.dispatch("click"); }
  focus() { this.ownerDocument.activeElement = this; }
  /** Every element under this one, depth first. */
  *descendants() {
    for (const c of this.children) {
      if (c.nodeType === 1) { yield c; yield* c.descendants(); }
    }
  }
  /** The descendants carrying class `cls`. */
  byClass(cls) { return [...this.descendants()].filter((e) => e.classList.contains(cls)); }
}

export class Document {
  constructor(ids = []) {
    this.created = [];
    this.activeElement = null;
    this.byId = new Map(ids.map((id) => [id, new Element(this, "div")]));
  }
  createElement(tag) {
    const e = new Element(this, tag);
    this.created.push(e);
    return e;
  }
  createTextNode(text) { return new TextNode(text); }
  getElementById(id) { return this.byId.get(id) || null; }
  write() { throw new Error("document.write used"); }
}
