# Packaging for AWS: one CloudFormation (SAM) template with the API, the functions and the
# table, built without AWS credentials, and checked by cfn-lint as part of `make test`.
STAGE ?= prod
PACKAGE_DIR := build/package

.PHONY: package lint-template

package: install ## Write the $(STAGE) template and deployment zip to build/package/
	$(PY) -m localdev.package --stage $(STAGE) --out $(PACKAGE_DIR)

lint-template: package ## Validate the packaged template and infra/ with cfn-lint
	$(VENV)/bin/cfn-lint $(PACKAGE_DIR)/sam.json infra/table.json

test: lint-template
