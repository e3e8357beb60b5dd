# t_audittrail.sh: the audit trail under a burst of registrations (src/audit).
ims_test(audit_burst ims1 90)
