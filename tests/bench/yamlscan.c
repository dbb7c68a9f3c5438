/*
 * The floor for `constel plan`: libyaml's event parser over a file, doing
 * nothing with the events. tests/bench/plan.sh compiles and times it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <yaml.h>

int main(int argc, char **argv)
{
	yaml_parser_t parser;
	yaml_event_t event;
	FILE *f;
	size_t n = 0;
	int done = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: yamlscan FILE\n");
		return 2;
	}
	f = fopen(argv[1], "rb");
	if (!f) {
		perror(argv[1]);
		return 2;
	}
	if (!yaml_parser_initialize(&parser))
		abort();
	yaml_parser_set_input_file(&parser, f);
	while (!done) {
		if (!yaml_parser_parse(&parser, &event)) {
			fprintf(stderr, "%s:%zu:%zu: %s\n", argv[1], parser.problem_mark.line + 1,
				parser.problem_mark.column + 1, parser.problem);
			return 1;
		}
		done = event.type == YAML_STREAM_END_EVENT;
		yaml_event_delete(&event);
		n++;
	}
	yaml_parser_delete(&parser);
	fclose(f);
	printf("%zu events\n", n);
	return 0;
}
