"""Reading configuration from the outside world: the routing-rules file (and the daemon settings).

The core never reads files; this package turns them into validated core objects, with file:line problems.
"""

from fsrouter.config.rules_loader import Problem, check_file, load_rules, parse_rules

__all__ = ["Problem", "check_file", "load_rules", "parse_rules"]
