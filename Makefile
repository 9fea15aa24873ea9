# Makefile for the payments extension (PGXS).
#
#   make && make install        build and install into the PostgreSQL of pg_config
#   make installcheck           every test kind against throwaway clusters
#   make check-regress | check-isolation | check-tap | check-fuzz   one kind
#
# scripts/test runs all of it (as root it installs what is missing first).

EXTENSION = payments
EXTVERSION = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" payments.control)

MODULE_big = payments
OBJS = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))
SHLIB_LINK += -lcrypto
PG_CFLAGS += -Wall -Wextra -Wno-unused-parameter

# The install script is the module sources in this order; core comes first.
# They live in sql/modules/, because pg_regress would take a file
# sql/NAME.sql as the input of the test NAME.
SQL_SOURCES = sql/modules/core.sql sql/modules/idempotency.sql sql/modules/webhook.sql sql/modules/redact.sql \
	sql/modules/fraud.sql sql/modules/reconcile.sql sql/modules/saga.sql \
	sql/modules/citus.sql
#
# Released versions: sql/released/ keeps each one's install script as it
# shipped, and an upgrade script to the current version is built from
# sql/upgrade/FROM--TO.sql and the modules that version added.  When a
# version is released, its built scripts are frozen into sql/released/.
UPGRADES = sql/$(EXTENSION)--0.1--0.2.sql
DATA_built = sql/$(EXTENSION)--$(EXTVERSION).sql $(UPGRADES)
DATA = $(wildcard sql/released/$(EXTENSION)--*.sql)

# Tests: file names are the test lists, so adding a file adds a test.
REGRESS = $(basename $(notdir $(sort $(wildcard test/sql/*.sql))))
ISOLATION = $(basename $(notdir $(sort $(wildcard test/specs/*.spec))))
TEST_OPTS = --inputdir=test --outputdir=. --temp-instance=./tmp_check \
	--temp-config=test/payments.conf
REGRESS_OPTS = $(TEST_OPTS) --load-extension=$(EXTENSION)
ISOLATION_OPTS = $(TEST_OPTS)
ENCODING = UTF8
NO_LOCALE = 1
TAP_TESTS = 1
PROVE_TESTS = test/t/*.pl
EXTRA_CLEAN = $(DATA_built) output_iso test/fuzz/build

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Headers are few and small: any change to one rebuilds every object.
$(OBJS) $(OBJS:.o=.bc): $(wildcard src/*.h)

sql/$(EXTENSION)--$(EXTVERSION).sql: $(SQL_SOURCES) payments.control
	cat $(SQL_SOURCES) > $@

sql/$(EXTENSION)--0.1--0.2.sql: sql/upgrade/0.1--0.2.sql sql/modules/citus.sql
	cat $^ > $@

.PHONY: check-regress check-isolation check-tap check-fuzz

check-regress:
	$(pg_regress_installcheck) $(REGRESS_OPTS) $(REGRESS)

check-isolation:
	$(pg_isolation_regress_installcheck) $(ISOLATION_OPTS) $(ISOLATION)

check-tap:
	$(prove_installcheck)

check-fuzz:
	test/fuzz/run
