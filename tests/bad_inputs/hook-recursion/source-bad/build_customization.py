def deeper(n):
    return deeper(n + 1)


def pre_connector_install(c):
    return deeper(0)
