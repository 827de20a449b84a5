#!/usr/bin/python3
"""The tray's windows as a screen reader sees them, over AT-SPI (issue 6:
"every control has an accessible label and is reachable by keyboard").

Usage: a11y-walk.py [--keyboard] APP_NAME TIMEOUT_S TITLE...
       a11y-walk.py APP_NAME TIMEOUT_S --windows N   (titles not known: another language)

Waits until the application APP_NAME shows a window for each TITLE (or N
windows), then
walks every window and checks each control a person can use that is on
screen (visible) and sensitive: it has a name a person can understand (not
empty, not a GTK class name such as "GtkImage", no mnemonic underscore, not
the same words twice) and
it can take the keyboard focus. With --keyboard, the keyboard itself
(xdotool: X focus, then Tab and Escape as key presses): Tab reaches every
control, Escape closes each window but the first. Prints one line per
window and per problem;
exit 0 when there is none, 1 otherwise, 2 when the windows never came.
"""
import re
import subprocess
import sys
import time

import pyatspi

# Roles of controls a person operates (AT-SPI role names, GTK 4).
CONTROLS = {
    "push button", "toggle button", "check box", "radio button", "entry",
    "password text", "text", "spin button", "combo box", "list", "list box",
    "slider", "menu item", "switch", "link", "tree table", "table",
}
GTK_CLASS = re.compile(r"^Gtk[A-Z]\w*$")


def find_app(name):
    desktop = pyatspi.Registry.getDesktop(0)
    for i in range(desktop.childCount):
        app = desktop.getChildAtIndex(i)
        if app is not None and app.name == name:
            return app
    return None


def windows(app):
    """The application's windows by title (GTK 4.8 gives some the role
    "filler" rather than "frame": every child of the application counts)."""
    found = {}
    for i in range(app.childCount):
        win = app.getChildAtIndex(i)
        if win is not None:
            found[win.name] = win
    return found


def said_twice(name):
    words = name.split()
    half = len(words) // 2
    return half > 0 and len(words) % 2 == 0 and words[:half] == words[half:]


def focusable_inside(node):
    for i in range(node.childCount):
        child = node.getChildAtIndex(i)
        if child is not None and (child.getState().contains(pyatspi.STATE_FOCUSABLE)
                                  or focusable_inside(child)):
            return True
    return False


WINDOW_CONTROLS = {"Minimize", "Maximize", "Restore", "Close"}


def window_controls(node):
    """Whether node is the title bar's window buttons (GtkWindowControls: a
    box of nothing but Minimize / Maximize / Close), which GTK keeps out of
    the Tab chain; the window manager's keys do their work."""
    try:
        kids = [node.getChildAtIndex(i) for i in range(node.childCount)]
        return bool(kids) and all(k is not None and k.getRoleName() == "push button"
                                  and k.name in WINDOW_CONTROLS for k in kids)
    except Exception:
        return False


def problems(node, where, seen, top=True):
    """Problems of node (a window when top) and below, as (where, role,
    name, what); counts controls in seen. An insensitive widget makes all
    it holds insensitive (GTK 4.8 reports a child's own flag only)."""
    out = []
    try:
        role = node.getRoleName()
        name = node.name or ""
        state = node.getState()
    except Exception as e:  # a node gone while walking: not ours to judge
        return [(where, "?", "?", "vanished while read: %s" % e)]
    # GTK 4.8 sets "showing" on windows only; "visible" is what it has below.
    if not state.contains(pyatspi.STATE_VISIBLE) and not top:
        return out  # hidden widgets and what they hold are not on screen
    if not state.contains(pyatspi.STATE_SENSITIVE) and not top:
        return out  # nothing in it can be used now
    if role in CONTROLS:
        seen.append((where, role, name))
        if not name.strip():
            out.append((where, role, name, "has no accessible name"))
        elif GTK_CLASS.match(name.strip()):
            out.append((where, role, name, "is named by its GTK class, not for a person"))
        elif re.search(r"(^|\s)_\w", name):
            out.append((where, role, name, "has a mnemonic underscore in its name"))
        elif said_twice(name):
            out.append((where, role, name, "says its name twice"))
        # A drop-down takes the focus in the button inside it (checked on its own).
        if not (state.contains(pyatspi.STATE_FOCUSABLE)
                or (role == "combo box" and focusable_inside(node))):
            out.append((where, role, name, "cannot take the keyboard focus"))
    for i in range(node.childCount):
        child = node.getChildAtIndex(i)
        if child is not None:
            out += problems(child, where, seen, False)
    return out


def focused_in(node):
    """The control that has the keyboard focus below node, or None."""
    try:
        if node.getRoleName() in CONTROLS and node.getState().contains(pyatspi.STATE_FOCUSED):
            return node
        for i in range(node.childCount):
            child = node.getChildAtIndex(i)
            if child is not None:
                found = focused_in(child)
                if found is not None:
                    return found
    except Exception:
        return None
    return None


def collect_window_controls(node, out):
    if window_controls(node):
        for i in range(node.childCount):
            out.add(("push button", node.getChildAtIndex(i).name))
        return
    for i in range(node.childCount):
        child = node.getChildAtIndex(i)
        if child is not None:
            collect_window_controls(child, out)


def identity(node):
    return None if node is None else (node.getRoleName(), node.name, node.getIndexInParent())


def xdotool(*args):
    return subprocess.run(["xdotool"] + list(args), capture_output=True, text=True)


def tab_walk(app, title, controls, close=True):
    """Presses Tab in window title (X focus set with xdotool, keys through
    XTEST as a keyboard sends them) until every control of it had the focus
    or twice as many presses as controls went by; then Escape. Problems as
    in problems(): controls Tab never reached, and a window Escape left."""
    ids = xdotool("search", "--name", "^%s$" % re.escape(title)).stdout.split()
    win = windows(app).get(title)
    if not ids or win is None:
        return [(title, "window", title, "not found for the keyboard walk")]
    for wid in ids:
        xdotool("windowfocus", "--sync", wid)
        time.sleep(0.2)
        if focused_in(win) is not None or wid == ids[-1]:
            break
    skip = set()
    collect_window_controls(win, skip)
    wanted = set((role, name) for where, role, name in controls if where == title) - skip
    reached = set()
    for _ in range(2 * len(wanted) + 4):
        now = focused_in(win)
        # The focused control, and what holds it (a list, a drop-down).
        node = now
        while node is not None and node != win:
            reached.add((node.getRoleName(), node.name or ""))
            node = node.parent
        if wanted <= reached:
            break
        xdotool("key", "Tab")
        deadline = time.time() + 2.0  # AT-SPI follows the focus a moment later
        while time.time() < deadline and identity(focused_in(win)) == identity(now):
            time.sleep(0.05)
    out = [(title, role, name, "is never reached with Tab")
           for role, name in sorted(wanted - reached)]
    if not close:
        return out
    xdotool("key", "Escape")
    deadline = time.time() + 10.0
    while time.time() < deadline and title in windows(app):
        time.sleep(0.1)
    if title in windows(app):
        out.append((title, "window", title, "does not close with Escape"))
    return out


def main():
    args = sys.argv[1:]
    keyboard = "--keyboard" in args
    args = [a for a in args if a != "--keyboard"]
    app_name, timeout, titles = args[0], float(args[1]), args[2:]
    count = int(titles[1]) if titles[:1] == ["--windows"] else None
    deadline = time.time() + timeout
    app, wins = None, {}
    while time.time() < deadline:
        app = find_app(app_name)
        wins = windows(app) if app is not None else {}
        if count is not None and len(wins) >= count:
            titles = sorted(wins)
            break
        if count is None and all(t in wins for t in titles):
            break
        time.sleep(0.2)
    missing = [t for t in titles if t not in wins] if count is None else \
        (["%d windows" % count] if len(wins) < count else [])
    if missing:
        print("FAIL - windows never shown over AT-SPI: %s (seen: %s)"
              % (", ".join(missing), ", ".join(sorted(wins)) or "none"))
        return 2
    # Windows fill in as kcpsd answers: read until two walks agree.
    last = None
    for _ in range(25):
        seen, found = [], []
        for title in titles:
            if title in wins:
                found += problems(wins[title], title, seen)
            else:
                found.append((title, "window", title, "closed while read"))
        now = (len(seen), tuple(found))
        if now == last:
            break
        last = now
        time.sleep(0.2)
        wins = windows(app)
    for title in titles:
        print("window - %s: %d controls" % (title, sum(1 for s in seen if s[0] == title)))
        for where, role, name in seen:
            if where == title:
                print("         %s %r" % (role, name))
    # The keyboard, as a person uses it: Tab through each window, newest
    # (on top, modal ones first) to oldest, then Escape to close it. The
    # first title (the main window: closing it quits) is walked, not closed.
    if keyboard:
        for title in reversed(titles):
            found += tab_walk(app, title, seen, close=title != titles[0])
        print("keyboard - Tab reached every control; Escape closed the windows"
              if not any("Tab" in p[3] or "Escape" in p[3] for p in found) else
              "keyboard - problems below")
    for where, role, name, what in found:
        print("FAIL - %s: %s %r %s" % (where, role, name, what))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
