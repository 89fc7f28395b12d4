"""Writing one value deep inside a config-like tree at a path of dict keys and list indexes, for the fuzz
tests: a missing or scalar step along the way becomes a new dict, so a path can reach keys the tree lacks."""


def mutate(tree, path: list, value) -> None:
    node = tree
    for key in path[:-1]:
        child = node.get(key) if isinstance(node, dict) else (
            node[key] if isinstance(node, list) and isinstance(key, int) and key < len(node) else None)
        if not isinstance(child, (dict, list)):
            if not isinstance(node, dict):
                return
            child = node[key] = {}
        node = child
    last = path[-1]
    if isinstance(node, dict) or (isinstance(node, list) and isinstance(last, int) and last < len(node)):
        node[last] = value
