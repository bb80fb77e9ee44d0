"""The technician's maintenance console on a serial port (issue 10 item 8; docs/console.md).

Pure parts: ``line_editor`` (bytes in, echo and lines out, for a dumb terminal),
``commands`` (the command table: ``?`` help, unique-prefix abbreviations), ``lockout``
(the login delay and lockout policy) and ``session`` (login, commands, output, written
against :class:`terminald.daemon.operator.Operator`). ``passwd`` hashes and checks the
password (argon2id); ``driver`` runs a session on the configured port in its own thread.
"""
