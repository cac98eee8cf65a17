"""The built-in transports and layers, each a plugin registered through the ``anyipc`` entry-point group."""
