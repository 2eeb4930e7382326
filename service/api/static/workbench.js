// Keyboard shortcuts for the workbench (the pages work without them): j/k move, o/Enter open, x tick,
// c/r decide, z zoom, u back to the queue, ? help. Keys typed into a field are the field's.
(function () {
  "use strict";
  const rows = Array.from(document.querySelectorAll("tr[data-href]"));
  let current = -1;

  function select(index) {
    if (!rows.length) return;
    current = Math.max(0, Math.min(rows.length - 1, index));
    rows.forEach((row, i) => row.classList.toggle("current", i === current));
    rows[current].scrollIntoView({ block: "nearest" });
    const link = rows[current].querySelector("a");
    if (link) link.focus({ preventScroll: true });
  }

  function click(selector) {
    const element = document.querySelector(selector);
    if (element) element.click();
    return Boolean(element);
  }

  const onItem = Boolean(document.getElementById("evidence"));
  const actions = {
    j: () => (onItem ? click("#next") : select(current + 1)),
    k: () => (onItem ? click("#prev") : select(current - 1)),
    o: () => current >= 0 && (window.location.href = rows[current].dataset.href),
    Enter: () => !onItem && current >= 0 && (window.location.href = rows[current].dataset.href),
    x: () => {
      const box = current >= 0 && rows[current].querySelector("input[type=checkbox]");
      if (box) box.checked = !box.checked;
    },
    c: () => onItem && click("#confirm"),
    r: () => onItem && click("#reject"),
    z: () => {
      const zoom = document.getElementById("zoom");
      if (!zoom) return;
      zoom.open = !zoom.open;
      if (zoom.open) zoom.scrollIntoView({ block: "start" }); // and the lazy matches picture loads
    },
    u: () => onItem && click("#to-queue"),
    "?": () => {
      const help = document.getElementById("help");
      if (help) help.hidden = !help.hidden;
    },
  };

  document.addEventListener("keydown", (event) => {
    const target = event.target;
    const typing = target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
    if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "Enter" && target && target.tagName === "A") return; // the link opens itself
    const action = actions[event.key];
    if (action) {
      event.preventDefault();
      action();
    }
  });
})();
