/* What plinth does when every guest has stopped ([plinth] on_idle in plinth.cfg). */
#ifndef PLINTH_KERNEL_IDLE_H
#define PLINTH_KERNEL_IDLE_H

#include <stdbool.h>

void idle_set_poweroff(bool poweroff);
/* Powers off (on_idle = poweroff) or logs and keeps running (stay). */
void idle_all_guests_stopped(void);

#endif
