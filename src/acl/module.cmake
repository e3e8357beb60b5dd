# acl: security groups at the listeners (docs/security-groups.md).
# rules.c parses Neutron's security_group_rules JSON (jansson) into an
# immutable rule set; holder.c publishes it to the listeners (atomic
# pointer plus grace period) and counts and logs denials.
list(APPEND IMS_SOURCES
  src/acl/rules.c
  src/acl/holder.c
  src/acl/dyn.c
  src/acl/neutron.c)
