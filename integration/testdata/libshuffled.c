/* libshuffled: the library of shuffled (shuffled.c), holding a pointer
 * into its player in the library's own static data. */
void *lib_cursor;

void lib_point(void *p)
{
	lib_cursor = p;
}
