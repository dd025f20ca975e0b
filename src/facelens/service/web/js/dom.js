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

/** Show `message` in the element with id `id` (hidden when message is empty). */
export function say(id, message) {
  const node = document.getElementById(id);
  node.textContent = message || "";
  node.hidden = !message;
}

/**
 * Make `zone` accept dropped files and `input`'s picks; `onFiles(files)` gets image Files.
 * `accept(file)` filters what is kept (default: images).
 */
export function dropZone(zone, input, onFiles, accept = (file) => file.type.startsWith("image/")) {
  const take = (list) => {
    const files = Array.from(list || []).filter(accept);
    if (files.length) onFiles(files);
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
    if (event.key === "Enter" || event.key === " ") input.click();
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
    image.onerror = () => reject(new Error(`${file.name} cannot be shown by this browser`));
    image.src = URL.createObjectURL(file);
    image.alt = file.name;
  });
}

/**
 * A photo with boxes laid over it. Boxes are [x, y, width, height] in pixels of an image
 * `width` x `height` (the API's coordinates); they are placed in percent, so they follow
 * the photo at any displayed size. Each face: {box, label, kind: "known"|"unknown"|"rejected"}.
 */
export function photoWithBoxes(image, width, height, faces) {
  const frame = el("div", { class: "photo" }, image);
  faces.forEach((face, index) => {
    const [x, y, w, h] = face.box;
    const box = el(
      "div",
      {
        class: `face-box ${face.kind === "known" ? "" : face.kind}`.trim(),
        "data-face": index,
        title: face.title || face.label,
      },
      el("span", { class: "tag", text: face.label }),
    );
    box.style.left = `${(100 * x) / width}%`;
    box.style.top = `${(100 * y) / height}%`;
    box.style.width = `${(100 * w) / width}%`;
    box.style.height = `${(100 * h) / height}%`;
    frame.append(box);
  });
  return frame;
}

/** A small canvas showing the region `box` of `image` (the face found), `size` px square. */
export function faceThumbnail(image, box, scale = 1, size = 112) {
  const canvas = el("canvas", { width: size, height: size, class: "face-thumb" });
  const [x, y, w, h] = box.map((value) => value * scale);
  const side = Math.max(w, h) * 1.2;
  const context = canvas.getContext("2d");
  context.drawImage(image, x + w / 2 - side / 2, y + h / 2 - side / 2, side, side, 0, 0, size, size);
  return canvas;
}

/** A false-match rate as "1 in N" for people. */
export function oneIn(rate) {
  if (!rate || rate <= 0) return "n/a";
  return `1 in ${Math.round(1 / rate).toLocaleString("en")}`;
}
