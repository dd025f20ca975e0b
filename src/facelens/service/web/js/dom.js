// Small DOM helpers shared by the views: elements, messages, drop zones, photos with face boxes.

export const $ = (selector, root = document) => root.querySelector(selector);

/** A new element: el("li", {class: "x", text: "..."}, child, ...). */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "text") node.textContent = value;
    else if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name in node && name !== "list") node[name] = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

// --- Escape ----------------------------------------------------------------------------------
// Escape closes what is open around the keyboard focus, innermost first, and gives the focus
// back to the control that opened it: an open <details> (to its summary), a panel or warning
// registered with `onEscape`, or an edit registered with `cancelOnEscape`.

const closers = new WeakMap();

/**
 * Escape pressed on `node` or inside it calls `close()`, which answers what it did: false
 * (or nothing) when there was nothing to close there (the Escape goes on to what is around
 * it), true when it closed or cancelled something, or the element to focus now (the control
 * that opened what it closed). Several nodes may share one `close` (a panel and its toggle).
 */
export function onEscape(close, ...nodes) {
  for (const node of nodes) closers.set(node, close);
}

/** Escape in `input` undoes what was typed since `original()` ("" by default): the value
 * goes back (an "input" event tells the page) and the focus stays. Once it is back, Escape
 * goes on to what is around the field. */
export function cancelOnEscape(input, original = () => "") {
  onEscape(() => {
    const value = original();
    if (input.value === value) return false;
    input.value = value;
    input.dispatchEvent(new Event("input", { bubbles: true }));
    return true;
  }, input);
}

/** Close an open <details> (and empty the forms in it); its summary, to focus. */
function closeDetails(details) {
  details.open = false;
  details.querySelectorAll("form").forEach((form) => form.reset());
  return details.querySelector(":scope > summary");
}

document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape" || event.defaultPrevented || event.isComposing) return;
  for (let node = event.target; node && node !== document; node = node.parentNode) {
    let done = false;
    if (closers.has(node)) done = closers.get(node)(event);
    else if (node.tagName === "DETAILS" && node.open) done = closeDetails(node);
    if (!done) continue;
    event.preventDefault();
    if (done instanceof Element) done.focus();
    return;
  }
});

let pendingFlash = "";

/** Show `message` in the flash line after the next change of view (which clears it). */
export function flashNext(message) {
  pendingFlash = message;
}

/** The message `flashNext` left for the view being shown ("" when none); it is used once. */
export function takeFlash() {
  const message = pendingFlash;
  pendingFlash = "";
  return message;
}

/** Show `message` in the element with id `id` (hidden when message is empty). */
export function say(id, message) {
  const node = document.getElementById(id);
  node.textContent = message || "";
  node.hidden = !message;
}

/** "a.txt is not a photo", "a.txt and b.pdf are not photos": what a drop zone refused. */
export function refusedFiles(files, what = "a photo") {
  const names = files.map((file) => file.name);
  const list = names.length > 1 ? `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}` : names[0];
  return names.length > 1 ? `${list} are not ${what.replace(/^an? /, "")}s.` : `${list} is not ${what}.`;
}

/**
 * Make `zone` accept dropped files and `input`'s picks; `onFiles(files)` gets image Files.
 * `accept(file)` filters what is kept (default: images); the files it refuses are named in
 * the element with id `refusedId` ("notes.txt is not a photo."). A click anywhere on the
 * zone, or Enter or Space on it, opens the file picker.
 */
export function dropZone(zone, input, onFiles, accept = (file) => file.type.startsWith("image/"), refusedId = null) {
  const take = (list) => {
    const all = Array.from(list || []);
    const files = all.filter(accept);
    const refused = all.filter((file) => !accept(file));
    if (files.length) onFiles(files);
    if (refused.length && refusedId) say(refusedId, refusedFiles(refused));
  };
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    take(event.dataTransfer && event.dataTransfer.files);
  });
  zone.addEventListener("keydown", (event) => {
    if (event.target !== zone || (event.key !== "Enter" && event.key !== " ")) return;
    event.preventDefault(); // Space would scroll the page
    input.click();
  });
  zone.addEventListener("click", (event) => {
    // the label and the input open the picker themselves; controls inside do their own work
    if (event.target.closest("label, input, button, a, video, select, .photo")) return;
    input.click();
  });
  input.addEventListener("change", () => {
    take(input.files);
    input.value = "";
  });
}

/** An <img> of a local File, resolved once it is decoded (natural size known). */
export function loadImage(file) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error(`${file.name} cannot be previewed here (a damaged file, or a format only the server reads, such as TIFF or PGM)`));
    image.src = URL.createObjectURL(file);
    image.alt = file.name;
  });
}

/** "1 photo", "3 photos": a count with its noun in the right number. */
export function plural(count, noun, many = `${noun}s`) {
  return `${count.toLocaleString("en")} ${count === 1 ? noun : many}`;
}

/**
 * A photo with boxes laid over it. Boxes are [x, y, width, height] in pixels of an image
 * `width` x `height` (the API's coordinates); they are placed in percent, so they follow
 * the photo at any displayed size. Each face: {box, label, kind: "known"|"unknown"|"rejected"}.
 * Each box carries a tag with its label (cut short with an ellipsis within the photo, the
 * whole in its title); when tags would overlap at the size shown, they show the face's
 * number (1, 2, ... in the order given) instead, placed where they overlap no other, and the
 * page lists the faces by number (see `declutter`). With `numbers`, the tags always carry
 * the number ("2. Ada"), for a page that lists the faces by number anyway.
 */
export function photoWithBoxes(image, width, height, faces, { numbers = false } = {}) {
  const frame = el("div", { class: "photo boxed" }, image);
  if (numbers) frame.dataset.numbers = "true";
  faces.forEach((face, index) => {
    // a face cut by the photo's edge has a box reaching past it: the part shown is drawn
    const [x, y, w, h] = insideImage(face.box, width, height);
    const box = el(
      "div",
      {
        class: `face-box ${face.kind === "known" ? "" : face.kind}`.trim(),
        "data-face": index,
        title: face.title ? `${index + 1}. ${face.label}: ${face.title}` : `${index + 1}. ${face.label}`,
      },
      el("span", { class: "tag", text: face.label, title: face.label, "data-label": face.label, "data-n": index + 1 }),
    );
    box.style.left = `${(100 * x) / width}%`;
    box.style.top = `${(100 * y) / height}%`;
    box.style.width = `${(100 * w) / width}%`;
    box.style.height = `${(100 * h) / height}%`;
    frame.append(box);
  });
  if (faces.length && "ResizeObserver" in window) {
    let shownWidth = -1;
    new ResizeObserver(() => {
      if (frame.clientWidth === shownWidth) return;
      shownWidth = frame.clientWidth;
      declutter(frame);
    }).observe(frame);
  }
  return frame;
}

/** `box` [x, y, w, h] cut to the image `width` x `height` (detectors answer boxes that
 * reach past the edge for a face the edge cuts). */
function insideImage([x, y, w, h], width, height) {
  const left = Math.min(Math.max(0, x), width);
  const top = Math.min(Math.max(0, y), height);
  const right = Math.max(left, Math.min(width, x + w));
  const bottom = Math.max(top, Math.min(height, y + h));
  return [left, top, right - left, bottom - top];
}

/**
 * Lay out the tags of a photo's boxes at its displayed size. A tag sits above its box,
 * kept inside the photo. If two tags would overlap, the photo becomes "numbered": each tag
 * shows its face's number and takes the first place around its box (above, below, left,
 * right, inside) where it overlaps no other tag, and no other face if it can.
 */
export function declutter(frame) {
  const tags = [...frame.querySelectorAll(".face-box > .tag")];
  const area = { width: frame.clientWidth, height: frame.clientHeight };
  if (!tags.length || area.width === 0) return;
  frame.classList.remove("numbered");
  drawLeaders(frame, [], area);
  const origin = frame.getBoundingClientRect();
  const boxes = tags.map((tag) => relative(tag.parentElement.getBoundingClientRect(), origin));
  const numbers = frame.dataset.numbers === "true";
  const named = tags.map((tag, i) => {
    tag.textContent = numbers ? `${tag.dataset.n}. ${tag.dataset.label}` : tag.dataset.label;
    tag.title = tag.dataset.label;
    tag.style.maxWidth = `${Math.min(area.width, 320)}px`; // a long name ends in "…" within the photo
    const size = tag.getBoundingClientRect();
    const b = boxes[i];
    const top = b.top - size.height >= 0 ? b.top - size.height : b.top; // inside when no room
    return place(tag, b, clamp(b.left, size.width, area.width), top, size);
  });
  if (!named.some((r, i) => named.slice(i + 1).some((other) => overlap(r, other) > 0))) return;

  frame.classList.add("numbered");
  const placed = [];
  const leaders = [];
  tags.forEach((tag, i) => {
    tag.textContent = tag.dataset.n;
    const size = tag.getBoundingClientRect();
    const b = boxes[i];
    const spot = ([x, y]) => ({
      left: clamp(x, size.width, area.width),
      top: clamp(y, size.height, area.height),
      width: size.width,
      height: size.height,
    });
    const beside = [
      [b.left, b.top - size.height],
      [b.left, b.bottom],
      [b.left - size.width, b.top],
      [b.right, b.top],
      [b.right - size.width, b.top - size.height],
      [b.right - size.width, b.bottom],
      [b.left, b.top],
    ].map(spot);
    const cost = (r) =>
      1e6 * placed.reduce((sum, other) => sum + overlap(r, other), 0) +
      0.2 * boxes.reduce((sum, other, j) => sum + (j === i ? 0 : overlap(r, other)), 0) +
      distance(r, b);
    let best = beside.reduce((a, c) => (cost(c) < cost(a) ? c : a));
    // no free place beside the box: the nearest free one around it, with a line to the face
    for (let ring = 1; ring <= 6 && cost(best) >= 1e6; ring++) {
      for (let dx = -ring; dx <= ring; dx++) {
        for (let dy = -ring; dy <= ring; dy++) {
          if (Math.max(Math.abs(dx), Math.abs(dy)) !== ring) continue;
          const candidate = spot([
            b.left + dx * (size.width + 2),
            b.top - size.height + dy * (size.height + 2),
          ]);
          if (cost(candidate) < cost(best)) best = candidate;
        }
      }
    }
    placed.push(place(tag, b, best.left, best.top, size));
    if (distance(best, b) > 2) leaders.push([best, b]);
  });
  drawLeaders(frame, leaders, area);
}

/** Thin lines from numbers placed away from their face to the face's box. */
function drawLeaders(frame, leaders, area) {
  const NS = "http://www.w3.org/2000/svg";
  let svg = frame.querySelector("svg.leaders");
  if (!svg) {
    svg = document.createElementNS(NS, "svg");
    svg.setAttribute("class", "leaders");
    svg.setAttribute("aria-hidden", "true");
    frame.append(svg);
  }
  svg.setAttribute("viewBox", `0 0 ${area.width} ${area.height}`);
  svg.replaceChildren(
    ...leaders.map(([tag, b]) => {
      const x = tag.left + tag.width / 2;
      const y = tag.top + tag.height / 2;
      const line = document.createElementNS(NS, "line");
      line.setAttribute("x1", x);
      line.setAttribute("y1", y);
      line.setAttribute("x2", Math.max(b.left, Math.min(x, b.right)));
      line.setAttribute("y2", Math.max(b.top, Math.min(y, b.bottom)));
      return line;
    }),
  );
}

/** Pixels between a rect and a box (0 when they touch or overlap). */
function distance(r, b) {
  const dx = Math.max(b.left - (r.left + r.width), r.left - b.right, 0);
  const dy = Math.max(b.top - (r.top + r.height), r.top - b.bottom, 0);
  return Math.hypot(dx, dy);
}

function relative(rect, origin) {
  const left = rect.left - origin.left;
  const top = rect.top - origin.top;
  return { left, top, right: left + rect.width, bottom: top + rect.height, width: rect.width, height: rect.height };
}

function clamp(start, length, limit) {
  return Math.max(0, Math.min(start, limit - length));
}

/** Put `tag` at (left, top) of the photo (it is positioned inside its box `b`); its rect. */
function place(tag, b, left, top, size) {
  tag.style.left = `${left - b.left - tag.parentElement.clientLeft}px`;
  tag.style.top = `${top - b.top - tag.parentElement.clientTop}px`;
  tag.style.bottom = "auto";
  return { left, top, width: size.width, height: size.height };
}

/** The area two rects {left, top, width, height} share, in square pixels. */
function overlap(a, b) {
  const width = Math.min(a.left + a.width, b.left + b.width) - Math.max(a.left, b.left);
  const height = Math.min(a.top + a.height, b.top + b.height) - Math.max(a.top, b.top);
  return width > 0 && height > 0 ? width * height : 0;
}

/** A small canvas showing the region `box` of `image` (the face found), `size` px square.
 * Where that region reaches past the photo (a face its edge cuts), the canvas is the page's
 * neutral grey, as Identify's cut-out is, never a blank strip. */
export function faceThumbnail(image, box, scale = 1, size = 112) {
  const canvas = el("canvas", { width: size, height: size, class: "face-thumb" });
  const [x, y, w, h] = box.map((value) => value * scale);
  const side = Math.max(w, h) * 1.2;
  const context = canvas.getContext("2d");
  context.fillStyle = "#808080";
  context.fillRect(0, 0, size, size);
  context.drawImage(image, x + w / 2 - side / 2, y + h / 2 - side / 2, side, side, 0, 0, size, size);
  return canvas;
}

/** A false-match rate as "1 in N" for people. */
export function oneIn(rate) {
  if (!rate || rate <= 0) return "n/a";
  return `1 in ${Math.round(1 / rate).toLocaleString("en")}`;
}

/** A calibrated log10 likelihood ratio in words: "400 times likelier for the same person",
 * "400 times likelier for two different people", or "" when there is none. */
export function odds(llr) {
  if (llr === null || llr === undefined) return "";
  const ratio = Math.pow(10, Math.abs(llr));
  if (ratio < 2) return "about as likely for the same person as for two different people";
  const times = ratio >= 1e6 ? "over a million" : Math.round(ratio).toLocaleString("en");
  return `${times} times likelier for ${llr >= 0 ? "the same person" : "two different people"}`;
}

/** The library corrections (POST /api/library/undo answers their name) in words. */
const UNDONE = {
  hide: "hiding the group",
  merge: "the merge",
  move: "moving the faces",
  name: "the naming",
  not_person: "“not this person”",
  reject: "the rejection",
  split: "the split",
};

/** What an undo answer says to people: "Undid the merge." or "Nothing to undo." */
export function undoneMessage(answer) {
  if (!answer.undone) return "Nothing to undo.";
  return `Undid ${UNDONE[answer.undone] || answer.undone.replaceAll("_", " ")}.`;
}
