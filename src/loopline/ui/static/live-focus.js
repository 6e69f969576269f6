/* loopline console: a live update (an SSE message swapped into the page by htmx) keeps the
   keyboard focus where it was. Before the swap, the focused element inside the swapped part is
   remembered (see ways()); after it, the same element of the new content is focused again,
   without scrolling. Without this a keyboard user on a live page lost the focus on every
   update. Loaded by every page (base.html). */
(function () {
  "use strict";

  var held = null;

  function attrSelector(el, name) {
    return el.tagName.toLowerCase() + "[" + name + '="' + CSS.escape(el.getAttribute(name)) + '"]';
  }

  function dataAttr(el) {
    for (var i = 0; i < el.attributes.length; i++) {
      if (el.attributes[i].name.indexOf("data-") === 0) {
        return el.attributes[i].name;
      }
    }
    return null;
  }

  /* Ways to find the focused element again, tried in order: its id; its href (a link whose
     target did not change); the nearest ancestor with an id or a data-* attribute, and the
     element's position among the same tags inside it (a link whose query moved on). */
  function ways(el, root) {
    var found = [];
    if (el.id) {
      found.push({ selector: "#" + CSS.escape(el.id), index: 0 });
    }
    if (el.hasAttribute("href")) {
      found.push({ selector: attrSelector(el, "href"), index: 0 });
    }
    for (var up = el.parentElement; up && up !== root.parentElement; up = up.parentElement) {
      var anchor = up.id ? "#" + CSS.escape(up.id) : dataAttr(up) && attrSelector(up, dataAttr(up));
      if (anchor) {
        var tag = el.tagName.toLowerCase();
        var index = Array.prototype.indexOf.call(up.querySelectorAll(tag), el);
        found.push({ selector: anchor, inner: tag, index: index });
        break;
      }
    }
    return found;
  }

  function locate(root, way) {
    var at = root.matches(way.selector) ? root : root.querySelector(way.selector);
    if (!at) {
      return null;
    }
    return way.inner ? at.querySelectorAll(way.inner)[way.index] || null : at;
  }

  document.addEventListener("htmx:sseBeforeMessage", function (event) {
    var target = event.target;
    var focused = document.activeElement;
    held = null;
    if (focused && focused !== document.body && target.contains(focused)) {
      held = { target: target, ways: ways(focused, target) };
    }
  });

  document.addEventListener("htmx:sseMessage", function (event) {
    if (held === null || held.target !== event.target) {
      return;
    }
    var root = held.target;
    var list = held.ways;
    held = null;
    for (var i = 0; i < list.length; i++) {
      var found = locate(root, list[i]);
      if (found) {
        if (document.activeElement !== found) {
          found.focus({ preventScroll: true });
        }
        return;
      }
    }
  });
})();
